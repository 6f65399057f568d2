//! The behaviour suite shared by every adapter. Empty until the first adapter lands.
