"""Cryptographic primitives and the secure aggregation protocol.

Small modules, one primitive each (key agreement, labelled HKDF, mask PRG,
Shamir sharing, AEAD, fixed-point encoding, lane arithmetic on packed
vectors), composed by the sans-IO SecAgg/SecAgg+ state machines in
`crypto.secagg`. No sockets, files or clocks anywhere in this package.

May import `topology`; never `learner`, the daemons or the command line.
"""
