"""The fault-injection harness (`make faults`, tests/faults/) imports, and its matrix lists
issue 16's nine scenarios, each saying what it proves. Nothing is started here."""

from tests.faults.scenarios import SCENARIOS


def test_the_fault_matrix_lists_nine_numbered_scenarios_that_each_say_what_they_prove():
    assert [scenario.number for scenario in SCENARIOS] == list(range(1, 10))
    assert len({scenario.title for scenario in SCENARIOS}) == len(SCENARIOS)
    for scenario in SCENARIOS:
        assert callable(scenario.run), scenario.title
        assert len(scenario.proves) > 80, f"{scenario.title}: say what it proves"
