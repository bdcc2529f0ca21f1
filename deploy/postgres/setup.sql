-- PostgreSQL for several coar-notify `serve` replicas and `worker` processes on one
-- database (docs/deploy.md). Run as a superuser:
--
--   PASSWORD=$(openssl rand -hex 24); echo "$PASSWORD"    # hex: nothing to escape in a URL
--   psql -v ON_ERROR_STOP=1 -v password="'$PASSWORD'" -f setup.sql
--
-- then set, in /etc/coar-notify/coar-notify.env on every machine:
--
--   COAR_DATABASE_URL=postgres://coar_notify:PASSWORD@db.repository.example/coar_notify?sslmode=verify-full
--
-- The first process to start creates the tables (migrations take a database lock, so
-- replicas starting together wait for one another); `coar-notify migrate` does it ahead.

CREATE ROLE coar_notify LOGIN PASSWORD :password;
CREATE DATABASE coar_notify OWNER coar_notify ENCODING 'UTF8' TEMPLATE template0;
\connect coar_notify
-- Only coar_notify creates objects in its database.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT ALL ON SCHEMA public TO coar_notify;
-- Each replica and worker holds up to 8 connections (the pool); leave room for them all.
ALTER ROLE coar_notify CONNECTION LIMIT 200;
-- No statement_timeout or idle_in_transaction_session_timeout for this role: replicas
-- starting together wait on the migration lock, and the session holding it stays idle in
-- its transaction while the migrations run on other connections; either timeout would
-- cancel them in a long upgrade.
