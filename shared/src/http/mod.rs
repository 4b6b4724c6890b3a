//! The HTTP surface: one axum router per endpoint group, served unchanged by Lambda and by `plexe serve`.
