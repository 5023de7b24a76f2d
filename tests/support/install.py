"""The documented way to wait for CRDs after applying them (README, docs/install.md)."""

# A jsonpath wait, not `--for=condition=Established`: on a CRD whose status has no conditions yet the condition
# form fails at once (kubernetes/kubernetes#66439); a jsonpath wait treats the missing field as "not yet".
WAIT_FOR_ESTABLISHED = '--for=jsonpath={.status.conditions[?(@.type=="Established")].status}=True'
