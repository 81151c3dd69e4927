//! Invitations: the single-use, time-limited link that lets an invited user
//! set a password and become active.

pub mod errors;
pub mod models;
pub mod ports;
pub mod service;
