"""Deploy the trained model: a new immutable, verified version in the production folder.

Reads trainedmodel.pkl, its card and latestscore.txt (model folder) and ingestedfiles.txt (output folder).
Writes production_deployment/versions/<N>/ with a manifest of sha256s, then the `current` pointer, then the
course's flat copies (trainedmodel.pkl, latestscore.txt, ingestedfiles.txt). Run: python deployment.py
"""
from __future__ import annotations

import json
import logging

from risk import cli, registry
from risk.config import Config
from risk.errors import MissingInputError
from risk.files import sha256_file
from risk.ledger import recorded

logger = logging.getLogger(__name__)
CARD = "trainedmodel.json"
INGESTEDFILES = "ingestedfiles.txt"


def sources(config: Config) -> dict:
    """The files a version is made of, by their name in the version folder."""
    return {
        registry.MODEL: config.model_folder / registry.MODEL,
        registry.SCORE: config.model_folder / registry.SCORE,
        registry.FILES: config.output_folder / INGESTEDFILES,
        CARD: config.model_folder / CARD,
    }


def read_card(config: Config, model_sha: str) -> dict:
    """The model card, which must describe the model file being deployed (training writes it second)."""
    path = config.model_folder / CARD
    if not path.is_file():
        raise MissingInputError(f"{path}: model card not found (run training.py first)")
    card = json.loads(path.read_text(encoding="utf-8"))
    if card.get("model_sha256") != model_sha:
        raise MissingInputError(f"{path}: card is for model {str(card.get('model_sha256'))[:12]}, not the trained"
                                f" model {model_sha[:12]} (run training.py again)")
    return card


def version_info(card: dict, score: float) -> dict:
    return {"score": score, "data_sha256": card.get("data_sha256"), "rows": card.get("rows"),
            "sklearn_version": card.get("sklearn_version")}


def run_deployment(config: Config, parent_run: int | None = None) -> dict:
    """Deploy the trained model if its score on record belongs to it; return the new version's manifest."""
    model_path = config.model_folder / registry.MODEL
    if not model_path.is_file():
        raise MissingInputError(f"{model_path}: no trained model to deploy (run training.py first)")
    with recorded(config.ledger_path, "deployment", parent_run) as (ledger, run_id, detail):
        model_sha = sha256_file(model_path)
        score = ledger.score_for(model_sha)
        if score is None:
            raise MissingInputError(f"{model_path}: this model has no score on record (run scoring.py first)")
        info = version_info(read_card(config, model_sha), score)
        version = registry.deploy(config.prod_folder, sources(config), info)
        ledger.record_deployment(run_id, version.number, model_sha, score)
        detail.update({"version": version.number, "score": score, "model_sha256": model_sha})
    logger.info("deployment: version %d (F1 %.4f) is current in %s", version.number, score, config.prod_folder)
    return version.manifest


def main(argv: list[str] | None = None) -> int:
    return cli.run(cli.parser(__doc__).parse_args(argv), run_deployment)


if __name__ == "__main__":
    raise SystemExit(main())
