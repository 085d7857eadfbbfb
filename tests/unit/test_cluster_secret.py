"""The cluster secret is never a constant everyone knows: a topology without
one gets $MINIS3_CLUSTER_SECRET or its data directory's own random secret."""
from __future__ import annotations

import stat
import subprocess
import sys

import pytest

from minis3 import config as T


@pytest.fixture(autouse=True)
def no_env(monkeypatch):
    monkeypatch.delenv(T.SECRET_ENV, raising=False)


def test_a_new_data_directory_gets_its_own_random_secret_kept_private(tmp_path):
    a = T.load(None, data_dir=tmp_path / "one")
    b = T.load(None, data_dir=tmp_path / "two")
    assert len(a.cluster_secret) == 64 and a.cluster_secret != b.cluster_secret
    assert a.cluster_secret not in T.DEMO_SECRETS
    f = tmp_path / "one" / T.SECRET_FILE
    assert stat.S_IMODE(f.stat().st_mode) == 0o600
    assert T.load(None, data_dir=tmp_path / "one").cluster_secret == a.cluster_secret    # kept
    assert a.secret_source == f"this data directory's random cluster secret ({f}, mode 0600)"


def test_the_topology_then_the_environment_win(tmp_path, monkeypatch):
    assert T.parse(dict(T.default_doc(), cluster_secret="given"), data_dir=tmp_path).cluster_secret == "given"
    monkeypatch.setenv(T.SECRET_ENV, "from-env")
    topo = T.parse(T.default_doc(), data_dir=tmp_path)
    assert (topo.cluster_secret, topo.secret_source) == ("from-env", f"the cluster secret in ${T.SECRET_ENV}")
    assert not (tmp_path / T.SECRET_FILE).exists()


def test_processes_starting_together_agree(tmp_path):
    code = ("import sys; from minis3 import config as T; "
            "print(T.load(None, data_dir=sys.argv[1]).cluster_secret)")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "d")], stdout=subprocess.PIPE, text=True)
             for _ in range(8)]
    got = {p.communicate(timeout=60)[0].strip() for p in procs}
    assert len(got) == 1 and len(got.pop()) == 64
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == [T.SECRET_FILE]     # no temp file left


def test_every_region_of_a_world_shares_one(tmp_path):
    doc = {"region": [{"name": "us-east-1", "frontend": {"port": 19000}, "erasure": {"k": 2, "m": 1}},
                      {"name": "eu-west-1", "frontend": {"port": 19100}, "erasure": {"k": 2, "m": 1}}]}
    for i, r in enumerate(doc["region"]):
        r["az"] = [{"name": f"az-{c}", "nodes": [{"id": f"{c}{i}", "port": 19010 + 100 * i + j}],
                    "meta": {"port": 19050 + 100 * i + j}} for j, c in enumerate("abc")]
    w = T.parse_world(doc, data_dir=tmp_path)
    assert len({r.cluster_secret for r in w.regions}) == 1
    assert all("random cluster secret" in r.secret_source for r in w.regions)
    assert (tmp_path / T.SECRET_FILE).exists()


# ----------------------------------------------------------------------------- from files, credentials
@pytest.fixture
def clean_env(monkeypatch):
    for name in (T.SECRET_ENV, T.ACCESS_KEY_ENV, T.SECRET_KEY_ENV, T.INSECURE_DEMO_ENV, T.SUPERVISED_ENV):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name + "_FILE", raising=False)
    return monkeypatch


def test_secrets_from_the_files_their_file_variables_name(tmp_path, clean_env):
    """Docker secrets (/run/secrets/NAME) and systemd credentials are files: *_FILE names them."""
    (tmp_path / "cs").write_text("from-a-file\n")
    (tmp_path / "sk").write_text("  s3-secret-from-a-file \n")
    clean_env.setenv(T.SECRET_ENV + "_FILE", str(tmp_path / "cs"))
    clean_env.setenv(T.ACCESS_KEY_ENV, "deployer")
    clean_env.setenv(T.SECRET_KEY_ENV + "_FILE", str(tmp_path / "sk"))
    topo = T.parse(T.default_doc(), data_dir=tmp_path / "d")
    assert topo.cluster_secret == "from-a-file" and topo.credentials == {"deployer": "s3-secret-from-a-file"}
    assert topo.accounts == {"deployer": "deployer"}
    assert str(tmp_path / "cs") in topo.secret_source and not (tmp_path / "d" / T.SECRET_FILE).exists()
    # The topology's own still win.
    doc = dict(T.default_doc(), cluster_secret="given", credentials=[{"access_key": "a", "secret_key": "b"}])
    assert (T.parse(doc, data_dir=tmp_path).cluster_secret, T.parse(doc, data_dir=tmp_path).credentials) == \
        ("given", {"a": "b"})


@pytest.mark.parametrize("setup,error", [
    ({T.SECRET_ENV: "x", T.SECRET_ENV + "_FILE": "{tmp}/cs"}, "set one of them"),
    ({T.SECRET_ENV + "_FILE": "{tmp}/missing"}, "cannot be read"),
    ({T.SECRET_ENV + "_FILE": "{tmp}/empty"}, "is empty"),
    ({T.ACCESS_KEY_ENV: "only-the-access-key"}, "go together"),
])
def test_a_secret_given_wrong_is_an_error_not_a_default(tmp_path, clean_env, setup, error):
    (tmp_path / "cs").write_text("x")
    (tmp_path / "empty").write_text("\n")
    for k, v in setup.items():
        clean_env.setenv(k, v.format(tmp=tmp_path))
    with pytest.raises(T.TopologyError, match=error):
        T.parse(T.default_doc(), data_dir=tmp_path / "d")


def test_make_run_keeps_its_documented_s3_key_and_a_random_internal_secret(tmp_path, clean_env):
    topo = T.load(None, data_dir=tmp_path)
    assert topo.credentials == {T.DEFAULT_ACCESS_KEY: T.DEFAULT_SECRET_KEY}
    assert topo.cluster_secret not in T.DEMO_SECRETS and len(topo.cluster_secret) == 64


# ----------------------------------------------------------------------------- a deployment refuses demo values
def _deploy_topology(tmp_path, **top) -> str:
    """deploy/topology.toml as committed (no secret), plus ``top`` keys."""
    from pathlib import Path
    text = Path(__file__).resolve().parents[2].joinpath("deploy", "topology.toml").read_text()
    lines = [f'{k} = "{v}"' for k, v in top.items()]
    path = tmp_path / "topology.toml"
    path.write_text("\n".join(lines) + "\n" + text)
    return str(path)


def test_deploy_problems_name_each_secret_everyone_knows(tmp_path, clean_env):
    topo = T.load(_deploy_topology(tmp_path), data_dir=tmp_path / "d")
    got = T.deploy_problems(topo)
    assert len(got) == 2 and "no cluster secret is given" in got[0] and "'minis3secret'" in got[1]
    clean_env.setenv(T.SECRET_ENV, "minis3-compose-demo-secret-change-me")
    got = T.deploy_problems(T.load(_deploy_topology(tmp_path), data_dir=tmp_path / "d"))
    assert "published in minis3's own files" in got[0]
    clean_env.setenv(T.SECRET_ENV, "0123" * 16)
    clean_env.setenv(T.ACCESS_KEY_ENV, "minis3admin")
    clean_env.setenv(T.SECRET_KEY_ENV, "fedc" * 16)
    assert T.deploy_problems(T.load(_deploy_topology(tmp_path), data_dir=tmp_path / "d")) == []


def test_az_refuses_demo_secrets_unless_insecure_demo(tmp_path, clean_env, capsys):
    from minis3 import cli
    demo = _deploy_topology(tmp_path, cluster_secret="minis3-compose-demo-secret-change-me")
    args = ["az", "no-such-az", "--topology", demo, "--data-dir", str(tmp_path / "d")]
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert "minis3 az: refusing to start" in err and "openssl rand -hex 32" in err and "no AZ named" not in err
    # --insecure-demo, or its variable: judged, warned about, then on to the AZ (which does not exist here).
    for extra, env in (["--insecure-demo"], None), ([], "1"):
        if env:
            clean_env.setenv(T.INSECURE_DEMO_ENV, env)
        assert cli.main(args + extra) == 2
        err = capsys.readouterr().err
        assert "WARNING: starting with insecure secrets" in err and "no AZ named no-such-az" in err
    clean_env.delenv(T.INSECURE_DEMO_ENV)
    # A child of minis3's own supervisors is not judged again; the built-in local cluster is never judged.
    clean_env.setenv(T.SUPERVISED_ENV, "1")
    assert cli.main(args) == 2 and "refusing" not in capsys.readouterr().err
    clean_env.delenv(T.SUPERVISED_ENV)
    assert cli.main(["az", "no-such-az", "--data-dir", str(tmp_path / "local")]) == 2
    assert "refusing" not in capsys.readouterr().err


def test_frontend_and_scrubber_refuse_before_their_own_argument_parsing(tmp_path, clean_env, capsys):
    from minis3 import cli
    demo = _deploy_topology(tmp_path, cluster_secret="minis3-compose-demo-secret-change-me")
    for cmd in ("frontend", "scrubber"):
        assert cli.main([cmd, "--topology", demo, "--data-dir", str(tmp_path / "d")]) == 2
        assert f"minis3 {cmd}: refusing to start" in capsys.readouterr().err
    # With --insecure-demo the check passes and the flag is taken out: the process's own parser
    # sees the rest (here it stops at an option it does not know, before serving anything).
    with pytest.raises(SystemExit) as e:
        cli.main(["scrubber", "--insecure-demo", "--topology", demo, "--data-dir", str(tmp_path / "d"), "--bogus"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "WARNING: starting with insecure secrets" in err
    assert "unrecognized arguments: --bogus" in err and "--insecure-demo" not in err.split("unrecognized")[1]
