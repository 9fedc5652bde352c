"""Camera snapshots with every alarm (issue 22): pure parts (`burst`, `store`) beside the
adapter (`fetch`, the HTTP client; `component`, the cameras on the site; `twin`, the
simulated camera). docs/cameras.md says how it fits together."""
