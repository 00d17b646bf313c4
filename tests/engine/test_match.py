from stagecheck.engine.match import partial_mismatches

ACTUAL = {
    "spec": {"replicas": 2, "template": {"metadata": {"labels": {"app": "milvus"}}}},
    "status": {
        "conditions": [
            {"type": "Progressing", "status": "True"},
            {"type": "Ready", "status": "False", "reason": "Deploying"},
            {"type": "APIServerReady", "status": "True"},
        ]
    },
}


def test_only_written_fields_must_match() -> None:
    assert partial_mismatches({"spec": {"replicas": 2}}, ACTUAL) == []


def test_a_different_scalar_names_its_path() -> None:
    [mismatch] = partial_mismatches({"spec": {"replicas": 3}}, ACTUAL)
    assert mismatch.path == "spec.replicas"
    assert str(mismatch) == "spec.replicas: expected 3, found 2"


def test_an_absent_field_is_reported_as_absent() -> None:
    [mismatch] = partial_mismatches({"spec": {"paused": True}}, ACTUAL)
    assert "field absent" in str(mismatch)


def test_lists_match_as_unordered_subsets() -> None:
    expected = {"status": {"conditions": [{"type": "APIServerReady"}, {"type": "Progressing"}]}}
    assert partial_mismatches(expected, ACTUAL) == []


def test_a_list_item_without_match_shows_the_closest() -> None:
    expected = {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    [mismatch] = partial_mismatches(expected, ACTUAL)
    assert mismatch.path == "status.conditions[0]"
    assert mismatch.actual == {"type": "Ready", "status": "False", "reason": "Deploying"}
    assert "no item of 3 matches" in str(mismatch)


def test_each_expected_item_needs_its_own_actual_item() -> None:
    expected = {
        "status": {"conditions": [{"status": "True"}, {"status": "True"}, {"status": "True"}]}
    }
    assert len(partial_mismatches(expected, ACTUAL)) == 1


def test_numbers_and_their_string_forms_match_but_other_types_do_not() -> None:
    assert partial_mismatches({"spec": {"replicas": "2"}}, ACTUAL) == []
    assert partial_mismatches({"status": {"conditions": [{"status": True}]}}, ACTUAL) == []
    assert partial_mismatches({"spec": {"template": "x"}}, ACTUAL) != []
