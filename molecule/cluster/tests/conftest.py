"""The cluster scenario's tests act on named containers (clustertest.node), not on
testinfra's per-host ``host`` fixture: each test runs once, in file order."""
