//! Ordered, gap-free delivery across rejoins.
