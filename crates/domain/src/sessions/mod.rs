//! Sessions: signing in with a password, resolving a session token to the
//! user behind it on every request, signing out.

pub mod errors;
pub mod models;
pub mod ports;
mod second_step;
pub mod service;
mod step_up;
pub mod throttle;
