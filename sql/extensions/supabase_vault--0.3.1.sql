-- Local emulation of Supabase Vault: the same table, view and functions that migrations
-- and pg_cron jobs use (`vault.create_secret`, `vault.update_secret`,
-- `vault.decrypted_secrets`). Hosted Vault encrypts with libsodium under a key that
-- never enters SQL; here pgcrypto encrypts under a random root key kept in a table that
-- the extension's own (security definer) functions read, and that no grant opens (though
-- pg_read_all_data, which `postgres` holds, reads every table: `postgres` may read
-- vault.decrypted_secrets anyway, as hosted). Secrets are still
-- never stored in clear, so `select * from vault.secrets` shows ciphertext, as hosted.

create table vault._root_key (
  id boolean primary key default true check (id),
  key text not null
);
insert into vault._root_key (key) values (encode(extensions.gen_random_bytes(32), 'base64'));
revoke all on vault._root_key from public;

create table vault.secrets (
  id uuid primary key default extensions.gen_random_uuid(),
  name text unique,
  description text not null default '',
  secret text not null,
  key_id uuid,
  nonce bytea,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
comment on table vault.secrets is 'Table with encrypted `secret` column for storing sensitive information on disk.';

create function vault._encrypt(plain text) returns text
language sql security definer set search_path = ''
as $$
  select encode(extensions.pgp_sym_encrypt(plain, (select key from vault._root_key)), 'base64')
$$;

create function vault._decrypt(cipher text) returns text
language sql security definer set search_path = ''
as $$
  select extensions.pgp_sym_decrypt(decode(cipher, 'base64'), (select key from vault._root_key))
$$;

create view vault.decrypted_secrets as
select s.id, s.name, s.description, s.secret,
       vault._decrypt(s.secret) as decrypted_secret,
       s.key_id, s.nonce, s.created_at, s.updated_at
from vault.secrets s;

create function vault.create_secret(
  new_secret text,
  new_name text default null,
  new_description text default '',
  new_key_id uuid default null
) returns uuid
language sql security definer set search_path = ''
as $$
  insert into vault.secrets (secret, name, description, key_id)
  values (vault._encrypt(new_secret), new_name, new_description, new_key_id)
  returning id
$$;

create function vault.update_secret(
  secret_id uuid,
  new_secret text default null,
  new_name text default null,
  new_description text default null,
  new_key_id uuid default null
) returns void
language sql security definer set search_path = ''
as $$
  update vault.secrets set
    secret = coalesce(vault._encrypt(new_secret), secret),
    name = coalesce(new_name, name),
    description = coalesce(new_description, description),
    key_id = coalesce(new_key_id, key_id),
    updated_at = now()
  where id = secret_id
$$;

revoke all on all tables in schema vault from public;
revoke all on all functions in schema vault from public;
-- What supabase/postgres's after-create script for supabase_vault grants
-- (ansible/files/postgresql_extension_custom_scripts/supabase_vault/after-create.sql):
-- reading and deleting secrets, and writing them only through the two functions. The
-- view decrypts with `_decrypt`, this emulation's `_crypto_aead_det_decrypt`.
grant usage on schema vault to postgres, service_role;
grant select, delete on vault.secrets, vault.decrypted_secrets to postgres, service_role;
grant execute on function vault.create_secret(text, text, text, uuid),
  vault.update_secret(uuid, text, text, text, uuid), vault._decrypt(text)
  to postgres, service_role;
