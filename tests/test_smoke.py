"""The fixtures themselves: a deployed miniature project answers a prediction."""
from risk import registry


def test_deployed_project_serves_a_prediction(client, deployed):
    answer = client.post("/prediction", json={"records": [{"lastmonth_activity": 10, "lastyear_activity": 100,
                                                             "number_of_employees": 5}]})
    assert answer.status_code == 200
    assert answer.json["predictions"] in ([0], [1])
    assert answer.json["model_version"] == "1" == answer.headers["X-Model-Version"]
    assert registry.current_number(deployed.prod_folder) == 1
