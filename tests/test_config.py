"""Target selection: explicit, in one place, never the kubeconfig's current context."""

from __future__ import annotations

from pathlib import Path

import pytest

from stagecheck.config import load_settings, repository_of, run_root
from stagecheck.errors import ConfigError


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "stagecheck.toml").write_text(
        'default-target = "dev"\n'
        "[targets.dev]\n"
        'type = "cluster"\ncontext = "dev-admin"\nnamespace = "ai-dev"\n'
        "[targets.sandbox]\n"
        'type = "sandbox"\nnamespace = "private-ai-demo"\n'
    )
    return tmp_path


def test_the_sandbox_is_the_default_without_a_config_file(tmp_path: Path) -> None:
    settings = load_settings(tmp_path, env={"STAGECHECK_CACHE": str(tmp_path / "cache")})
    assert settings.sandbox_dir == tmp_path / "cache" / "sandbox"
    assert settings.target.type == "sandbox"
    assert settings.target.kubeconfig == tmp_path / "cache" / "sandbox" / "kubeconfig"
    assert settings.target.namespace == "private-ai-demo"
    assert settings.target.allow_writes


def test_the_option_beats_the_environment_which_beats_the_file(repo: Path) -> None:
    assert load_settings(repo, env={}).target.name == "dev"
    assert load_settings(repo, env={"STAGECHECK_TARGET": "sandbox"}).target.name == "sandbox"
    chosen = load_settings(repo, env={"STAGECHECK_TARGET": "sandbox"}, target_option="kind:demo")
    assert (chosen.target.type, chosen.target.context) == ("kind", "kind-demo")


def test_namespace_and_context_come_from_the_target(repo: Path) -> None:
    target = load_settings(repo, env={"HOME": str(repo)}).target
    assert (target.context, target.namespace) == ("dev-admin", "ai-dev")
    assert target.kubeconfig == repo / ".kube" / "config"


def test_live_targets_are_read_only_unless_allowed(repo: Path) -> None:
    assert not load_settings(repo, env={}).target.allow_writes
    assert load_settings(repo, env={}, allow_writes_option=True).target.allow_writes


def test_a_cluster_target_must_name_its_context(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="current context is never used implicitly"):
        load_settings(tmp_path, env={}, target_option="cluster")


def test_an_unknown_target_lists_the_known_ones(repo: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"unknown target 'prod'.*known: cluster, dev, in-cluster, kind, sandbox"
    ):
        load_settings(repo, env={}, target_option="prod")


def test_kubeconfig_follows_the_first_existing_entry_of_KUBECONFIG(tmp_path: Path) -> None:
    real = tmp_path / "real.yaml"
    real.write_text("")
    env = {"KUBECONFIG": f"{tmp_path / 'missing.yaml'}:{real}"}
    assert load_settings(tmp_path, env=env, target_option="cluster:x").target.kubeconfig == real


def test_a_broken_config_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "stagecheck.toml").write_text("default-target = \n")
    with pytest.raises(ConfigError, match="stagecheck.toml is not valid TOML"):
        load_settings(tmp_path, env={})


def test_an_endpoint_that_is_no_url_route_or_port_forward_is_refused_at_start(
    tmp_path: Path,
) -> None:
    (tmp_path / "stagecheck.toml").write_text(
        '[targets.kind]\ntype = "kind"\n'
        'endpoints = { milvus = "port-forward:deployment/milvus:19530" }\n'
    )
    with pytest.raises(ConfigError, match="endpoint milvus = 'port-forward:deployment/milvus"):
        load_settings(tmp_path, env={"HOME": str(tmp_path)}, target_option="kind")


def test_endpoint_auth_sources_are_checked_and_the_sandbox_calls_pipelines_as_its_workload(
    tmp_path: Path,
) -> None:
    (tmp_path / "stagecheck.toml").write_text(
        '[targets.dev]\ntype = "cluster"\ncontext = "c"\nendpoint-auth = { pipelines = "oc" }\n'
    )
    with pytest.raises(ConfigError, match="endpoint-auth pipelines = 'oc'"):
        load_settings(tmp_path, env={"HOME": str(tmp_path)}, target_option="dev")
    sandbox = load_settings(tmp_path, env={"STAGECHECK_CACHE": str(tmp_path)}).target
    assert sandbox.endpoint_auth == {"pipelines": "serviceaccount:rag-workload-sa"}


@pytest.mark.parametrize("value", ['"60s"', "0", "-1", "true"])
def test_an_endpoint_timeout_that_is_no_positive_number_is_refused(
    tmp_path: Path, value: str
) -> None:
    (tmp_path / "stagecheck.toml").write_text(
        f'[targets.kind]\ntype = "kind"\nendpoint-timeout = {value}\n'
    )
    with pytest.raises(ConfigError, match="endpoint-timeout = .*a number above 0"):
        load_settings(tmp_path, env={"HOME": str(tmp_path)}, target_option="kind")


def test_the_endpoint_timeout_is_60_s_unless_the_target_says(tmp_path: Path) -> None:
    (tmp_path / "stagecheck.toml").write_text(
        '[targets.kind]\ntype = "kind"\nendpoint-timeout = 7.5\n'
    )
    env = {"HOME": str(tmp_path), "STAGECHECK_CACHE": str(tmp_path)}
    assert load_settings(tmp_path, env=env, target_option="kind").target.endpoint_timeout_s == 7.5
    assert load_settings(tmp_path, env=env).target.endpoint_timeout_s == 60


POD_ENV = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}


def test_in_cluster_is_never_chosen_implicitly_even_inside_a_pod(tmp_path: Path) -> None:
    assert load_settings(tmp_path, env=POD_ENV).target.type == "sandbox"


def test_in_cluster_reads_the_pods_address_and_namespace(tmp_path: Path) -> None:
    account = tmp_path / "serviceaccount"
    account.mkdir()
    (account / "namespace").write_text("stage-ns\n")
    env = {**POD_ENV, "STAGECHECK_SERVICEACCOUNT_DIR": str(account)}
    target = load_settings(tmp_path, env=env, target_option="in-cluster").target
    assert target.in_cluster is not None
    assert (target.in_cluster.server, target.namespace) == ("https://10.96.0.1:443", "stage-ns")
    assert not target.allow_writes
    assert target.describe().startswith("target 'in-cluster' (in-cluster: the pod's service")
    ipv6 = {**env, "KUBERNETES_SERVICE_HOST": "fd00::1"}
    server = load_settings(tmp_path, env=ipv6, target_option="in-cluster").target.in_cluster
    assert server is not None and server.server == "https://[fd00::1]:443"


def test_in_cluster_outside_a_pod_says_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT"):
        load_settings(tmp_path, env={}, target_option="in-cluster")


def test_unknown_target_keys_and_vars_are_refused_with_the_accepted_ones(tmp_path: Path) -> None:
    (tmp_path / "stagecheck.toml").write_text(
        '[targets.dev]\ntype = "cluster"\ncontext = "c"\nnamepsace = "typo"\n'
    )
    with pytest.raises(ConfigError, match=r"unknown key 'namepsace' for a cluster target; "
                       r"accepted: type, namespace, vars"):  # fmt: skip
        load_settings(tmp_path, env={}, target_option="dev")
    (tmp_path / "stagecheck.toml").write_text(
        '[targets.dev]\ntype = "cluster"\ncontext = "c"\nvars = { modle = "m" }\n'
    )
    with pytest.raises(ConfigError, match=r"unknown var 'modle'; accepted: namespace, model,"):
        load_settings(tmp_path, env={}, target_option="dev")


def test_reports_go_to_artifact_dir_when_ci_sets_it(tmp_path: Path) -> None:
    artifacts = str(tmp_path / "artifacts")
    assert load_settings(tmp_path, env={"ARTIFACT_DIR": artifacts}).reports_dir == Path(artifacts)
    chosen = load_settings(tmp_path, env={"ARTIFACT_DIR": artifacts, "STAGECHECK_REPORTS": "r"})
    assert chosen.reports_dir == Path("r")


def test_another_config_file_can_be_named(tmp_path: Path) -> None:
    mounted = tmp_path / "mounted.toml"
    mounted.write_text('default-target = "dev"\n[targets.dev]\ntype = "kind"\n')
    settings = load_settings(tmp_path, env={"STAGECHECK_CONFIG": str(mounted)})
    assert settings.target.context == "kind-kind"


def test_a_features_repository_is_the_nearest_folder_holding_stagecheck_toml(
    tmp_path: Path,
) -> None:
    outer, inner = tmp_path / "gitops", tmp_path / "gitops" / "teams" / "rag"
    (inner / "features" / "stage2").mkdir(parents=True)
    (outer / "stagecheck.toml").write_text("")
    (inner / "stagecheck.toml").write_text("")
    feature = inner / "features" / "stage2" / "milvus.feature"
    feature.write_text("Feature: M\n")
    (outer / "features").mkdir()
    assert repository_of(feature) == inner
    assert repository_of(inner) == inner
    assert repository_of(outer / "features") == outer
    assert repository_of(tmp_path) is None


def test_a_runs_repository_follows_its_first_path_not_the_folder_it_started_in(
    tmp_path: Path,
) -> None:
    repo, elsewhere = tmp_path / "repo", tmp_path / "elsewhere"
    (repo / "features" / "stage2").mkdir(parents=True)
    elsewhere.mkdir()
    (repo / "stagecheck.toml").write_text("")
    (repo / "features" / "stage2" / "m.feature").write_text("Feature: M\n")
    rootdir = tmp_path / "rootdir"
    assert run_root(["stage2"], repo / "features", rootdir) == repo
    assert run_root([f"{repo}/features/stage2/m.feature::test_x"], elsewhere, rootdir) == repo
    assert run_root([], repo / "features", rootdir) == repo  # no path: where it started
    assert run_root(["-"], elsewhere, rootdir) == rootdir  # no repository: pytest's rootdir
