//! # Layout
//! Projections (read models, metrics, fan-out) arrive with issue 3.
