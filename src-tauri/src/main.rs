//! `quarry-app`: the desktop window.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() {
    quarry_app::run();
}
