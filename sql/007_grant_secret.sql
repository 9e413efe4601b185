-- 007_grant_secret.sql - what `vsyncctl revoke --expired` needs to end
-- an expired grant's Redis password and no other.
--
-- A grant's password is its PostgreSQL role's and its Redis ACL user's.
-- Redis knows a user's passwords by their SHA-256 and removes one by it
-- (ACL SETUSER u !<hash>), so the row keeps that hash: a sweep of
-- expired grants removes the expired password only, never one that a
-- grant of the same project made since has set. The hash of a random
-- 256-bit password gives nothing away. NULL for grants made before this
-- migration (their Redis user is dropped whole).
--
-- Idempotent.

ALTER TABLE vsync_grants ADD COLUMN IF NOT EXISTS secret_sha256 text;
