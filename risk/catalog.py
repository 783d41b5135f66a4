"""The catalog: every file the pipeline reads and writes, by name, and the folder the config puts it in.

Names are defined here once; the stages, the registry, the API and the tests take them from here (Kedro's
data catalog), and `Config` (risk/config.py) joins them to the configured folders (`config.finaldata_path`).
The course's names (finaldata.csv, ingestedfiles.txt, trainedmodel.pkl, latestscore.txt, confusionmatrix.png,
apireturns.txt) are kept as the course gives them. Stdlib only: the idle tick imports it.
"""
from __future__ import annotations

# output_folder_path (ingesteddata/): the history and what ingestion keeps beside it
FINALDATA = "finaldata.csv"  # every ingested row, append-only
INGESTEDFILES = "ingestedfiles.txt"  # the files finaldata.csv holds, one name a line (derived from the ledger)
REJECTS = "rejects.csv"  # rejected rows with the file, row and reason
CONTACTS_REJECTS = "contacts_rejects.csv"  # contacts-folder lines set aside: file, line, reason
ROWINDEX = "rowindex"  # folder: the de-duplication index of row hashes
REPEATS = "repeats"  # folder: per file, the accepted rows finaldata.csv leaves out as duplicates (observations)
PARTS = "parts"  # folder: the layout before issue 4 (one CSV per file), adopted once
PREPARED = "prepared.npz"  # the API's read state's manifest: summary statistics, watches, segments (risk/prepared.py)
PREPARED_SEGMENTS = "prepared"  # folder: the read state's segments of client records, each written once
PREPARED_TAG = "prepared.tag"  # "<format>:<byte length of finaldata.csv>" the read state covers (the idle check)
PREPARED_FORMAT = 5  # the read state's layout: a state of another format is rebuilt (5: clients in mapped segments)
NOTIFIED = "notified.json"  # when each alert condition was last sent to the webhook (risk/notify.py)
LEDGER = "ledger.sqlite"  # the run ledger, the one source of truth
PIPELINE_LOCK = ".pipeline.lock"
INGESTION_LOCK = ".ingestion.lock"
# test_data_path
TESTDATA = "testdata.csv"
# output_model_path (practicemodels/): the trained model and what is written about it
MODEL = "trainedmodel.pkl"  # the course's pickled estimator: written for people who want it, never loaded
SAFE_MODEL = "trainedmodel.skops"  # the same estimator in skops format: what every load reads (risk/model.py)
CARD = "trainedmodel.json"  # the model card: features in order, rows, CV metrics, reference sample
TRAINED_FILES = "trainedfiles.txt"  # the files the model was trained on: a version's ingestedfiles.txt
SCORE = "latestscore.txt"  # the F1 on the test data, one number
DIAGNOSTICS = "diagnostics.json"
PLOT = "confusionmatrix.png"
REPORTS = "reports"  # folder: <version>/report.pdf and report.html, latest.pdf, latest.html
LATEST_PDF, LATEST_HTML = "latest.pdf", "latest.html"
APIRETURNS = "apireturns.txt"
# prod_deployment_path (production_deployment/): the registry
VERSIONS = "versions"  # folder: <N>/ one immutable version each
MANIFEST = "manifest.json"  # a version's sha256 sums, score and sources
CURRENT = "current"  # the number of the version served
VERSION_FILES = "ingestedfiles.txt"  # in a version: the files its model was trained on
