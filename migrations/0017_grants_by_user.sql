-- A listing of someone's sessions asks once whether they hold any OpenID grant at all;
-- most people never do, and their listing then skips the per-session lookup of the
-- applications signed in to.
CREATE INDEX oidc_grants_user ON oidc_grants(user_id);
