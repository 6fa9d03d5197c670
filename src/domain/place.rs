//! Where a request is: the GeoIP answer and the trusted network that holds it.

use std::net::IpAddr;

use crate::model::Location;
use crate::state::AppState;

/// Where an address is: the GeoIP database's answer, with the trusted network
/// (`[[networks]]`) that holds it, by name.
pub fn locate(state: &AppState, ip: IpAddr) -> Location {
    let mut location = state.geo.lookup(ip);
    location.network = state.config.network_of(ip).map(|n| n.name.clone());
    location
}

/// From a trusted network with `alerts = false`: never alerted about.
pub fn silent(state: &AppState, location: &Location) -> bool {
    location.network.as_deref().is_some_and(|name| {
        state
            .config
            .networks
            .iter()
            .any(|n| n.name == name && !n.alerts)
    })
}
