//! dialtone-api: the HTTP control plane (issue 5).
#![deny(missing_docs)]
