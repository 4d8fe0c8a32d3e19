// The console's entry: the player element (<cphone-player>, the same one resellers embed) and the
// shell element, which imports its pages.
import '../player/index.js';
import './app.js';
