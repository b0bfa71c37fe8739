-- A login attempt is recorded as a failure *before* its password is checked
-- (and forgotten again if it succeeds), so concurrent attempts cannot all
-- pass the limit check; `attempt` names the row one attempt wrote, so that
-- exactly that row is forgotten. Failures recorded before this migration
-- have none. Keep in step with the other dialect's migration of this version.

ALTER TABLE login_failures ADD COLUMN attempt TEXT;
