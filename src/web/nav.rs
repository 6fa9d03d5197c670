//! The one navigation (SPEC §22): [`SETTINGS_PAGES`] lists every settings page with its
//! label, path, group and who sees it. The settings menu, the breadcrumb of every
//! settings page and the Active Sessions tabs are all drawn from it, so a new page is
//! one line here.

use maud::{Markup, html};

use super::layout;
use crate::model::Authed;
use crate::model::Role;
use crate::paths;

/// Who sees a settings page.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Audience {
    Everyone,
    /// Admins and the owner.
    Admins,
    Owner,
}

impl Audience {
    pub fn admits(self, role: Role) -> bool {
        match self {
            Audience::Everyone => true,
            Audience::Admins => role.rank() >= Role::Admin.rank(),
            Audience::Owner => role == Role::Owner,
        }
    }
}

/// The menu's groups, in order.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Group {
    Security,
    Account,
    Team,
}

impl Group {
    pub const ALL: [Group; 3] = [Group::Security, Group::Account, Group::Team];

    pub fn label(self) -> &'static str {
        match self {
            Group::Security => "Security",
            Group::Account => "Account",
            Group::Team => "Team",
        }
    }
}

/// One settings page. A page with `tab_of` is a tab of the menu entry at that path (the
/// Active Sessions tabs), not an entry of the menu itself.
#[derive(Debug)]
pub struct SettingsPage {
    pub label: &'static str,
    pub path: &'static str,
    pub group: Group,
    pub audience: Audience,
    pub tab_of: Option<&'static str>,
}

const fn page(label: &'static str, path: &'static str, group: Group) -> SettingsPage {
    SettingsPage {
        label,
        path,
        group,
        audience: Audience::Everyone,
        tab_of: None,
    }
}

const fn only(mut p: SettingsPage, audience: Audience) -> SettingsPage {
    p.audience = audience;
    p
}

const fn tab(mut p: SettingsPage, of: &'static str) -> SettingsPage {
    p.tab_of = Some(of);
    p
}

/// Every settings page, menu entries in menu order, tabs after their entry.
pub const SETTINGS_PAGES: &[SettingsPage] = &[
    page("Active Sessions", paths::SESSIONS, Group::Security),
    tab(
        page("My Sessions", paths::SESSIONS, Group::Security),
        paths::SESSIONS,
    ),
    tab(
        only(
            page("Users Sessions", paths::USERS_SESSIONS, Group::Security),
            Audience::Admins,
        ),
        paths::SESSIONS,
    ),
    page("Sign-in history", paths::HISTORY, Group::Security),
    page("Security log", paths::SECURITY_LOG, Group::Security),
    page("Second factors", paths::SECOND_FACTORS, Group::Security),
    page("Profile", paths::PROFILE, Group::Account),
    page("Sign-in alerts", paths::NOTIFICATIONS, Group::Account),
    only(
        page("Users", paths::TEAM_USERS, Group::Team),
        Audience::Admins,
    ),
    only(
        page("Accounts", paths::TEAM_ACCOUNTS, Group::Team),
        Audience::Owner,
    ),
    only(
        page("Team log", paths::TEAM_LOG, Group::Team),
        Audience::Admins,
    ),
];

/// The menu entries `role` sees.
fn menu_entries(role: Role) -> impl Iterator<Item = &'static SettingsPage> {
    SETTINGS_PAGES
        .iter()
        .filter(move |p| p.tab_of.is_none() && p.audience.admits(role))
}

/// The page of the list that `current` is: the exact path, else the tab or entry whose
/// path it lies under (a sub-page such as "Add an authenticator app").
fn page_at(current: &str) -> Option<&'static SettingsPage> {
    let under = |p: &&SettingsPage| current.starts_with(&format!("{}/", p.path));
    SETTINGS_PAGES
        .iter()
        .filter(|p| p.tab_of.is_some())
        .find(|p| p.path == current)
        .or_else(|| SETTINGS_PAGES.iter().find(|p| p.path == current))
        .or_else(|| {
            SETTINGS_PAGES
                .iter()
                .filter(under)
                .max_by_key(|p| p.path.len())
        })
}

/// The menu entry that is current on the page at `current`: the page's own, or its
/// tab's entry. The highlight therefore never leaves the page's group.
fn current_entry(current: &str) -> Option<&'static SettingsPage> {
    let p = page_at(current)?;
    match p.tab_of {
        Some(of) => SETTINGS_PAGES
            .iter()
            .find(|e| e.tab_of.is_none() && e.path == of),
        None => Some(p),
    }
}

/// The settings menu's groups and links, for `role`, with the current entry marked.
fn menu_links(role: Role, current: &str) -> Markup {
    let here = current_entry(current).map(|e| e.path);
    html! {
        @for g in Group::ALL {
            @let entries: Vec<_> = menu_entries(role).filter(|e| e.group == g).collect();
            @if !entries.is_empty() {
                p.menu-group { (g.label()) }
                ul {
                    @for e in entries {
                        li { a href=(e.path) aria-current=[(here == Some(e.path)).then_some("page")] { (e.label) } }
                    }
                }
            }
        }
    }
}

/// The settings menu: a column beside the page on a wide screen; on a phone a "Menu"
/// button that opens the same links (a `details` element: no script needed).
pub fn settings_menu(me: &Authed, current: &str) -> Markup {
    let role = me.principal.role;
    let here = current_entry(current)
        .map(|e| e.label)
        .unwrap_or("Settings");
    html! {
        nav.menu.wide aria-label="Settings" {
            p.menu-title { "Settings" }
            (menu_links(role, current))
        }
        details.menu.narrow {
            summary { span.menu-icon aria-hidden="true" { "☰" } " Settings: " (here) }
            nav aria-label="Settings" { (menu_links(role, current)) }
        }
    }
}

/// The tabs of the menu entry the page at `current` belongs to, when it has any.
pub fn tabs(me: &Authed, current: &str) -> Markup {
    let role = me.principal.role;
    let Some(entry) = current_entry(current) else {
        return html! {};
    };
    let here = page_at(current).map(|p| p.path);
    let tabs: Vec<_> = SETTINGS_PAGES
        .iter()
        .filter(|p| p.tab_of == Some(entry.path) && p.audience.admits(role))
        .collect();
    html! {
        @if !tabs.is_empty() {
            nav.tabs aria-label=(entry.label) {
                @for t in tabs {
                    a href=(t.path) aria-current=[(here == Some(t.path)).then_some("page")] { (t.label) }
                }
            }
        }
    }
}

/// The frame of every settings page: the menu beside the content, which starts with
/// the breadcrumb ("Settings › Security"), the page's heading and its tabs.
pub fn settings_page(
    me: &Authed,
    csrf: &str,
    title: &str,
    current: &str,
    content: Markup,
) -> Markup {
    let group = page_at(current).map(|p| p.group.label());
    layout(
        title,
        Some((me, csrf)),
        html! {
            div.settings {
                (settings_menu(me, current))
                main.content #main {
                    @if let Some(g) = group { p.breadcrumb { "Settings › " (g) } }
                    h1 { (title) }
                    (tabs(me, current))
                    (content)
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROLES: [Role; 3] = [Role::User, Role::Admin, Role::Owner];

    fn hrefs(markup: &str) -> Vec<String> {
        markup
            .split("href=\"")
            .skip(1)
            .filter_map(|s| s.split('"').next())
            .map(str::to_string)
            .collect()
    }

    /// Every page of the list that a role sees is a link of the menu, or a tab of the
    /// page that menu link opens; and nothing else is.
    #[test]
    fn every_page_is_reachable_from_the_menu() {
        for role in ROLES {
            let menu = menu_links(role, paths::SESSIONS).into_string();
            let links = hrefs(&menu);
            for p in SETTINGS_PAGES.iter().filter(|p| p.audience.admits(role)) {
                let via = p.tab_of.unwrap_or(p.path);
                assert!(
                    links.iter().any(|l| l == via),
                    "{role:?}: {} is not in the menu {links:?}",
                    p.label
                );
            }
            let seen: Vec<_> = SETTINGS_PAGES
                .iter()
                .filter(|p| p.audience.admits(role))
                .map(|p| p.path)
                .collect();
            for l in &links {
                assert!(seen.contains(&l.as_str()), "{role:?}: {l} not in the list");
            }
        }
    }

    #[test]
    fn the_menu_follows_the_spec() {
        let owner: Vec<_> = menu_entries(Role::Owner)
            .map(|e| (e.group.label(), e.label))
            .collect();
        assert_eq!(
            owner,
            [
                ("Security", "Active Sessions"),
                ("Security", "Sign-in history"),
                ("Security", "Security log"),
                ("Security", "Second factors"),
                ("Account", "Profile"),
                ("Account", "Sign-in alerts"),
                ("Team", "Users"),
                ("Team", "Accounts"),
                ("Team", "Team log"),
            ]
        );
        assert_eq!(menu_entries(Role::User).count(), 6);
        assert_eq!(menu_entries(Role::Admin).count(), 8);
    }

    #[test]
    fn the_highlight_stays_in_its_group() {
        for (at, entry) in [
            (paths::SESSIONS, "Active Sessions"),
            (paths::USERS_SESSIONS, "Active Sessions"),
            (paths::HISTORY, "Sign-in history"),
            (paths::TEAM_LOG, "Team log"),
            ("/settings/security/second-factors/totp", "Second factors"),
        ] {
            let e = current_entry(at).unwrap();
            assert_eq!(e.label, entry, "{at}");
            assert_eq!(e.group, page_at(at).unwrap().group, "{at}");
        }
        let menu = menu_links(Role::Owner, paths::USERS_SESSIONS).into_string();
        assert_eq!(menu.matches("aria-current").count(), 1, "{menu}");
    }

    #[test]
    fn tabs_are_two_and_users_sessions_is_for_admins() {
        let tabs_of = |role: Role, at: &str| {
            SETTINGS_PAGES
                .iter()
                .filter(|p| p.tab_of == current_entry(at).map(|e| e.path))
                .filter(|p| p.audience.admits(role))
                .map(|p| p.label)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            tabs_of(Role::Admin, paths::SESSIONS),
            ["My Sessions", "Users Sessions"]
        );
        assert_eq!(tabs_of(Role::User, paths::SESSIONS), ["My Sessions"]);
        assert!(tabs_of(Role::Owner, paths::HISTORY).is_empty());
    }
}
