"""The disk guard: diskguard's policy and plan (plan), the removal of one step (prune), the daemon that
applies it on the engine's events (daemon), what persists between runs (state), the engine's on-disk image
store (image_store) and the size of an image in its registry (registry). The commands are agent.diskguard."""
