//! Operational endpoints: liveness, readiness, Prometheus metrics, request ids.
