"""Every call list is recorded and its outcome measured when the next month arrives: the figures equal what
the snapshot files say, and a rollback records the list it gives."""
from __future__ import annotations

import math
import subprocess

import pytest
from conftest import write_frame
from test_calllist import monthly_snapshots

from app import create_app
from risk import contract, deployment, holdout, pipeline, scoring, training
from risk.config import Config
from risk.ledger import Ledger

pytestmark = pytest.mark.slow  # pipeline runs


def wilson(k: int, n: int) -> list[float]:
    """The 95% Wilson score interval, from its formula."""
    z, p = 1.959963984540054, k / n
    centre, half = (p + z * z / (2 * n)) / (1 + z * z / n), z / (1 + z * z / n) * math.sqrt(
        p * (1 - p) / n + z * z / (4 * n * n))
    return [round(centre - half, 4), round(centre + half, 4)]


def test_a_recorded_list_is_measured_by_the_next_month(after_month0: Config) -> None:
    config = after_month0  # bootstrap on the course data and month 0: the first list
    months = monthly_snapshots(seed=11)
    client = create_app(config).test_client()
    assert client.get("/risk/outcomes").get_json()[0]["followed"] == 0  # nothing seen since
    write_frame(months[1], config.input_folder / "month1.csv")
    pipeline.run_fullprocess(config)  # month 1 arrives: a second list
    answer = client.get("/risk/outcomes")
    assert answer.status_code == 200
    second, first = answer.get_json()
    listed = set(first["clients"])
    assert first["capacity"] == config.call_capacity  # to call; the list holds the random controls too
    assert len(listed) == holdout.list_size(config.call_capacity, config.holdout_share)
    month1 = months[1].set_index(contract.ID_COLUMN)[contract.TARGET]
    followed = listed & set(month1.index)
    left = {name for name in followed if month1[name] == 1}
    base = set(month1.index) - listed
    base_left = {name for name in base if month1[name] == 1}
    assert (first["followed"], first["left"]) == (len(followed), len(left))
    assert (first["base_followed"], first["base_left"], first["missed"]) == (len(base), len(base_left),
                                                                             len(base_left))
    assert first["hit_rate"] == pytest.approx(len(left) / len(followed), abs=1e-4)
    assert first["base_rate"] == pytest.approx(len(base_left) / len(base), abs=1e-4)
    assert first["lift"] == pytest.approx(first["hit_rate"] / first["base_rate"], abs=1e-3)
    assert first["hit_rate_ci95"] == pytest.approx(wilson(len(left), len(followed)), abs=1e-4)
    assert set(first["missed_clients"]) <= base_left
    assert second["followed"] == 0
    assert client.get("/risk/outcomes?limit=1").get_json() == [second]
    assert client.get("/risk/outcomes?limit=0").status_code == 400


def test_a_list_keeps_its_next_month_outcome_and_a_rebuilt_state_agrees(after_month1: Config) -> None:
    config = after_month1  # months 0 and 1, each through fullprocess
    months = monthly_snapshots(seed=11)
    client = create_app(config).test_client()
    first_measured = client.get("/risk/outcomes").get_json()[-1]
    write_frame(months[2], config.input_folder / "month2.csv")
    pipeline.run_fullprocess(config)
    answer = client.get("/risk/outcomes").get_json()
    assert answer[-1] == first_measured  # month 2 does not change what month 1 said of the first list
    second = answer[-2]
    month2 = months[2].set_index(contract.ID_COLUMN)[contract.TARGET]
    followed = set(second["clients"]) & set(month2.index)
    assert (second["followed"], second["left"]) == (len(followed), int(month2[sorted(followed)].sum()))
    assert second["base_followed"] == len(month2) - len(followed)
    (config.output_folder / "prepared.npz").unlink()  # an upgrade: the state is rebuilt from the history
    with Ledger(config.ledger_path) as ledger:
        pipeline.refresh_prepared(config, ledger)
    assert client.get("/risk/outcomes").get_json() == answer


def test_a_rollback_records_the_list_it_gives(deployed: Config) -> None:
    training.run_training(deployed)
    scoring.run_scoring(deployed)
    deployment.run_deployment(deployed)
    with Ledger(deployed.ledger_path) as ledger:
        before = len(ledger.call_lists.latest(100))
    deployment.run_rollback(deployed, 1, "a test")
    with Ledger(deployed.ledger_path) as ledger:
        lists = ledger.call_lists.latest(100)
    assert len(lists) == before + 1
    assert lists[0]["model_version"] == 1
    assert [c["rank"] for c in lists[0]["clients"]] == list(range(1, len(lists[0]["clients"]) + 1))


def test_the_dashboard_shows_who_left_since_the_last_list_and_the_hit_rate_chart(after_month1: Config) -> None:
    config = after_month1  # months 0 and 1, each through fullprocess
    months = monthly_snapshots(seed=11)
    html = create_app(config).test_client().get("/").get_data(as_text=True)
    assert '<section id="left-since">' in html
    gone = set(months[1].loc[months[1][contract.TARGET] == 1, contract.ID_COLUMN])
    assert len(gone) == 9  # seed 11: 60 clients in month 0, 14 leave; of the 46 left, 9 leave in month 1
    assert html.count('class="departed-row"') == 9
    assert all(f'<td class="client">{name}</td>' in html for name in gone)
    assert '<svg id="outcome-chart"' in html
    assert html.count('<rect class="hit"') == 1  # the first list, measured by month 1
    assert html.count('class="outcome-row"') == 1


def test_the_report_says_how_right_the_last_measured_list_was(after_month1: Config) -> None:
    from risk import reporting

    config = after_month1  # months 0 and 1, each through fullprocess
    reporting.run_reporting(config)
    first = create_app(config).test_client().get("/risk/outcomes").get_json()[-1]
    html = " ".join((config.model_folder / "reports" / "latest.html").read_text(encoding="utf-8").split())
    assert f"precision at capacity {first['hit_rate'] * 100:.0f}%" in html
    assert f"lift {first['lift']:.1f}." in html
    pdf = subprocess.run(["/usr/bin/pdftotext", str(config.model_folder / "reports" / "latest.pdf"), "-"],
                         capture_output=True, text=True, check=True).stdout
    assert f"precision at capacity {first['hit_rate'] * 100:.0f}%" in " ".join(pdf.split())


def test_a_list_whose_clients_repeat_their_rows_next_month_is_judged_on_all_of_them(after_month0: Config) -> None:
    """Issue 23: an unchanged month sends the same row again; finaldata.csv drops it as a duplicate, but the client
    is still there, so the list counts it as followed."""
    config = after_month0  # the first list, on month 0
    months = monthly_snapshots(seed=11)
    with Ledger(config.ledger_path) as ledger:
        listed = [c["corporation"] for c in ledger.call_lists.latest(1)[0]["clients"]]
    before = config.finaldata_path.read_text(encoding="utf-8").count("\n")
    steady = months[0].set_index(contract.ID_COLUMN)
    month1 = months[1].set_index(contract.ID_COLUMN)
    repeated = [name for name in month1.index if name in set(listed) or name.endswith("7")]  # unchanged clients
    month1.loc[repeated] = steady.loc[repeated].to_numpy()
    write_frame(month1.reset_index(), config.input_folder / "month1.csv")
    pipeline.run_fullprocess(config)
    after = config.finaldata_path.read_text(encoding="utf-8").count("\n")
    assert after - before == len(month1) - len(repeated)  # finaldata.csv keeps the course's de-duplication
    first = create_app(config).test_client().get("/risk/outcomes").get_json()[-1]
    present = [name for name in listed if name in month1.index]  # the rest are the course's clients
    assert len(present) > config.call_capacity // 2
    assert set(present) <= set(repeated)  # each of them sent month 0's row again: a duplicate in finaldata.csv
    left = {name for name in present if month1.loc[name, contract.TARGET] == 1}
    assert (first["followed"], first["left"]) == (len(present), len(left))
    assert first["base_followed"] == len(month1) - len(present)
    answer = create_app(config).test_client().get("/risk/outcomes").get_json()
    (config.output_folder / "prepared.npz").unlink()  # rebuilt from the history: the same answer
    with Ledger(config.ledger_path) as ledger:
        pipeline.refresh_prepared(config, ledger)
    assert create_app(config).test_client().get("/risk/outcomes").get_json() == answer
