//! Serving: ONNX files run by tract, with plans optimized once and cached.
