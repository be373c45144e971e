"""SecAgg (Bonawitz et al., CCS 2017) and SecAgg+ (Bell et al., CCS 2020) as
sans-IO state machines: typed messages in, typed messages out."""
