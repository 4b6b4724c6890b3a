//! Export of a fitted [`Pipeline`](crate::automl::Pipeline) to one standard ONNX file.
