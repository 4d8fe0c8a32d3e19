// @cphone/web: not built yet (see README.md); the package exists so the workspace layout is complete.
export {};
