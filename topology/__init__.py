"""Who shares secrets and masks with whom: the complete graph (SecAgg) and
Harary-style k-regular graphs (SecAgg+), derived identically by every party
from public inputs, plus the choice of (k, t) for a given population."""
