"""OneID: identity resolution of person and enterprise records (deterministic on strong identifiers,
probabilistic on weak ones and attributes), shared by the pipeline's assets and `fincdp oneid`."""
