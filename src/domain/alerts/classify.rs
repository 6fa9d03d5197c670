//! Deciding whether a sign-in is alerted about (SPEC §5, §14): a new device, a new
//! country, an impossible journey, as the person's preferences allow.

use rusqlite::Connection;

use crate::db::{self, DbError};
use crate::model::{AlertPrefs, Location, UserId};

/// Why a sign-in alert is sent; several combine into one email.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Reasons {
    pub new_device: bool,
    pub new_country: bool,
    /// An impossible journey from the previous sign-in (SPEC §14).
    pub travel: bool,
    /// A live session used from another country (its own email).
    pub moved: bool,
}

impl Reasons {
    fn parts(self) -> impl Iterator<Item = (&'static str, &'static str)> {
        [
            (self.new_device, "new_device", "a new device"),
            (self.new_country, "new_country", "a new country"),
            (self.travel, "travel", "an impossible journey"),
            (
                self.moved,
                "moved",
                "your session moving to another country",
            ),
        ]
        .into_iter()
        .filter(|(on, _, _)| *on)
        .map(|(_, code, phrase)| (code, phrase))
    }

    pub fn any(self) -> bool {
        self.parts().next().is_some()
    }

    /// "a new device", "a new device and a new country", "a new device, a new country
    /// and an impossible journey".
    pub fn phrase(self) -> String {
        let words: Vec<&str> = self.parts().map(|(_, p)| p).collect();
        match words.split_last() {
            None => String::new(),
            Some((last, [])) => (*last).to_string(),
            Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        }
    }

    /// "new_device,new_country": as stored in the outbox.
    pub fn code(self) -> String {
        self.parts().map(|(c, _)| c).collect::<Vec<_>>().join(",")
    }

    pub fn parse(code: &str) -> Self {
        let has = |c: &str| code.split(',').any(|p| p == c);
        Reasons {
            new_device: has("new_device"),
            new_country: has("new_country"),
            travel: has("travel"),
            moved: has("moved"),
        }
    }

    /// Only the reasons the person chose to hear about.
    fn allowed_by(self, p: AlertPrefs) -> Self {
        Reasons {
            new_device: self.new_device && p.new_device,
            new_country: self.new_country && p.new_country,
            travel: self.travel && p.travel,
            moved: self.moved && p.moved,
        }
    }
}

/// `alerts.travel_min_km` and `alerts.travel_max_kmh`.
#[derive(Debug, Clone, Copy)]
pub struct TravelLimits {
    pub min_km: f64,
    pub max_kmh: f64,
}

/// What a successful sign-in brings to the alert decision.
pub struct SignInFacts<'a> {
    /// The device id was unknown for the user.
    pub device_is_new: bool,
    pub location: &'a Location,
    pub at: i64,
    /// From a trusted network with `alerts = false`.
    pub silent: bool,
}

/// The decision for one sign-in: the reasons, and the journey's words when one is
/// impossible ("from Budapest, Hungary to Tokyo, Japan in 2 hours").
#[derive(Debug, Clone, Default)]
pub struct Verdict {
    pub reasons: Reasons,
    pub journey: Option<String>,
}

/// Decides the reasons for a successful sign-in, inside its transaction and *before* the
/// sign-in itself is recorded (it compares with earlier ones). A first sign-in never
/// alerts; an unknown country never counts as new; a sign-in from a silent trusted
/// network never alerts; reasons the person turned off are dropped (unless their
/// account locks them on).
pub fn classify(
    c: &Connection,
    user: UserId,
    facts: &SignInFacts<'_>,
    limits: TravelLimits,
) -> Result<Verdict, DbError> {
    if facts.silent || !db::login_records::has_success(c, user)? {
        return Ok(Verdict::default());
    }
    let new_country = match facts.location.country_code.as_deref() {
        Some(cc) => !db::login_records::has_country(c, user, cc)?,
        None => false,
    };
    let journey = match db::login_records::find_last_success(c, user)? {
        Some((then, from)) => impossible_journey(&from, then, facts.location, facts.at, limits),
        None => None,
    };
    let reasons = Reasons {
        new_device: facts.device_is_new,
        new_country,
        travel: journey.is_some(),
        moved: false,
    };
    let reasons = reasons.allowed_by(preferences_in(c, user)?);
    Ok(Verdict {
        journey: journey.filter(|_| reasons.travel),
        reasons,
    })
}

/// The preferences that apply: the person's own, or all on when their account locks them.
fn preferences_in(c: &Connection, user: UserId) -> Result<AlertPrefs, DbError> {
    let (prefs, locked) = db::alert_prefs::find(c, user)?;
    Ok(if locked { AlertPrefs::default() } else { prefs })
}

/// Both places known to the city, further apart than `min_km` (less what the database
/// says each point may be off by), and faster than `max_kmh` between the two times.
fn impossible_journey(
    from: &Location,
    from_at: i64,
    to: &Location,
    to_at: i64,
    limits: TravelLimits,
) -> Option<String> {
    let (a, b) = (from.city_level()?, to.city_level()?);
    let slack = f64::from(a.accuracy_km.unwrap_or(0)) + f64::from(b.accuracy_km.unwrap_or(0));
    let km = (a.distance_km(&b) - slack).max(0.0);
    if km <= limits.min_km {
        return None;
    }
    // Two sign-ins in the same second are a minute apart for the arithmetic.
    let secs = (to_at - from_at).max(60);
    let kmh = km / (secs as f64 / 3600.0);
    (kmh > limits.max_kmh).then(|| {
        format!(
            "from {} to {} in {}",
            from.place(),
            to.place(),
            crate::clock::span(secs)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phrases() {
        let both = Reasons {
            new_device: true,
            new_country: true,
            ..Reasons::default()
        };
        assert_eq!(both.phrase(), "a new device and a new country");
        assert_eq!(Reasons::parse(&both.code()), both);
        let three = Reasons {
            travel: true,
            ..both
        };
        assert_eq!(
            three.phrase(),
            "a new device, a new country and an impossible journey"
        );
        assert_eq!(Reasons::parse(&three.code()), three);
        let dev = Reasons {
            new_device: true,
            ..Reasons::default()
        };
        assert_eq!(dev.phrase(), "a new device");
        let off = AlertPrefs {
            new_country: false,
            ..AlertPrefs::default()
        };
        assert_eq!(three.allowed_by(off).code(), "new_device,travel");
    }

    fn at(city: &str, country: &str, latitude: f64, longitude: f64) -> Location {
        Location {
            country_code: Some("XX".into()),
            country: Some(country.into()),
            city: Some(city.into()),
            coords: Some(crate::model::Coords {
                latitude,
                longitude,
                accuracy_km: None,
            }),
            network: None,
        }
    }

    #[test]
    fn journeys() {
        let limits = TravelLimits {
            min_km: 500.0,
            max_kmh: 1000.0,
        };
        let budapest = at("Budapest", "Hungary", 47.50, 19.04);
        let tokyo = at("Tokyo", "Japan", 35.68, 139.69);
        let vienna = at("Vienna", "Austria", 48.21, 16.37);
        assert_eq!(
            impossible_journey(&budapest, 0, &tokyo, 7200, limits).as_deref(),
            Some("from Budapest, Hungary to Tokyo, Japan in 2 hours")
        );
        assert_eq!(
            impossible_journey(&budapest, 0, &tokyo, 86_400, limits),
            None,
            "a day"
        );
        assert_eq!(
            impossible_journey(&budapest, 0, &vienna, 60, limits),
            None,
            "near"
        );
        let country_only = Location {
            city: None,
            ..tokyo.clone()
        };
        assert_eq!(
            impossible_journey(&budapest, 0, &country_only, 60, limits),
            None
        );
    }
}
