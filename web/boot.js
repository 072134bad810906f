// Starts the app (a file, not an inline script: the content security policy allows none).
import init from "/pkg/web.js";
init();
