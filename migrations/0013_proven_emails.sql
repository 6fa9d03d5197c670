-- SPEC §19: emails an admin types are not proof.
--
-- The email domains an account's admins may create or invite addresses in
-- (comma-separated, lower-case; empty: any domain). The owner is not limited.
ALTER TABLE accounts ADD COLUMN email_domains TEXT NOT NULL DEFAULT '';

-- Whether the person has proven their address by following an emailed link (an
-- invitation to an account that limits its domains, a password reset, a confirmed email
-- change) or the owner marked it verified. Only a proven address matches an
-- application's `allow_emails`.
ALTER TABLE users ADD COLUMN email_verified INTEGER NOT NULL DEFAULT 0;

-- Already proven: owners, and people who used a password-reset or email-change link.
UPDATE users SET email_verified = 1
 WHERE role = 'owner'
    OR id IN (SELECT user_id FROM links WHERE used_at IS NOT NULL AND kind IN ('reset', 'email'));
