//! The advisor's window as the graph keeps it: each dependency's traffic since the window
//! began, summed in the dependency's own entry (the graph looks it up for every flushed edge
//! anyway), handed over and reset once a window.

use super::GraphState;
use crate::advisor::detect::Window;

impl GraphState {
    /// The dependencies observed since the last call, each once with its totals, and a fresh
    /// start for the next window. One pass over the map, in its order; the window's start time
    /// is the advisor's to set.
    pub fn take_window(&mut self) -> Window {
        let mut window = Window::new(0);
        for (key, dep) in self.dependencies.iter_mut() {
            if std::mem::take(&mut dep.in_window) {
                window.push_unique(key, std::mem::take(&mut dep.window));
            }
        }
        window
    }
}
