"""The fixtures themselves: a deployed miniature project answers a prediction."""
from conftest import COURSE_PREDICTIONS, record

from risk import registry

# testdata.csv's five rows, its three features in the contract's order
COURSE_ROWS = [(234, 3, 10), (14, 2145, 99), (34, 333, 1000), (101, 12346, 2), (0, 675, 25)]


def test_deployed_project_serves_a_prediction(client, deployed):
    answer = client.post("/prediction", json={"records": [record(*row) for row in COURSE_ROWS]})
    assert answer.status_code == 200
    assert answer.json["predictions"] == COURSE_PREDICTIONS  # the course model's calls: [0, 1, 1, 1, 1]
    assert answer.json["model_version"] == "1" == answer.headers["X-Model-Version"]
    assert registry.current_number(deployed.prod_folder) == 1
