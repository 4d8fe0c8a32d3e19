// The console's entry: the shell element (which imports its pages) and the player element.
import './app.js';
