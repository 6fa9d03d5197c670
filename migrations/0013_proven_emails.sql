-- SPEC §19: emails an admin types are not proof.
--
-- The email domains an account's admins may create or invite addresses in
-- (comma-separated, lower-case; empty: any domain). The owner is not limited.
ALTER TABLE accounts ADD COLUMN email_domains TEXT NOT NULL DEFAULT '';

-- Whether the person has proven their address by following an emailed link (an
-- invitation to an account that limits its domains, a password reset, a confirmed email
-- change), or the operator or the owner vouched for it. Only a proven address matches an
-- application's `allow_emails`.
ALTER TABLE users ADD COLUMN email_verified INTEGER NOT NULL DEFAULT 0;

-- People who exist at the upgrade keep passing the rules they passed before (an upgrade
-- locks nobody out); the owner reviews them on the Users page and can withdraw it. Open
-- invitations prove nothing yet.
UPDATE users SET email_verified = 1 WHERE invited_at IS NULL;
