//! A local Backblaze B2 Native API (v4) server for tests. Not yet implemented: this crate
//! exposes nothing until it can serve B2's calls faithfully.
