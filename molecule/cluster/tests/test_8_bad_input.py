"""Bad cluster input fails with a clear message and changes nothing."""

import json

from clustertest import PREFIX, PROJECT_DIR, run_playbook


def test_two_node_galera_without_arbitrator_is_refused():
    """Two Galera nodes and no garbd: the loss of one leaves no quorum, so the role refuses."""
    two = [f"{PREFIX}-db1", f"{PREFIX}-db2"]
    result = run_playbook(PROJECT_DIR / "playbooks" / "site.yml", "--limit", ",".join(two),
                          "-e", json.dumps({"mailsql_cluster_hosts": two}))
    out = result.stdout + result.stderr
    assert result.returncode != 0, out[-3000:]
    assert "quorum" in out and "mailsql_galera_arbitrator" in out, out[-3000:]
    for name in two:
        recap = [line for line in out.splitlines() if line.startswith(name) and "changed=" in line]
        assert recap and "changed=0" in recap[0] and "failed=1" in recap[0], recap
