"""The fixtures themselves: a deployed miniature project answers a prediction."""
from conftest import record

from risk import registry


def test_deployed_project_serves_a_prediction(client, deployed):
    answer = client.post("/prediction", json={"records": [record(10, 100, 5)]})
    assert answer.status_code == 200
    assert answer.json["predictions"] in ([0], [1])
    assert answer.json["model_version"] == "1" == answer.headers["X-Model-Version"]
    assert registry.current_number(deployed.prod_folder) == 1
