//! `1ctl auth`: signup, login, logout, status.

use satusky_client::{Client, ClientError};
use satusky_types::ErrorCode;
use satusky_types::identity::{LoginRequest, Me, SignupRequest};

use crate::cli::{AuthCommand, LoginArgs, LogoutArgs, SignupArgs};
use crate::context::{Context, Source};
use crate::error::CliError;
use crate::output::note;
use crate::prompt;
use crate::views::{AuthStatus, Done};

pub async fn run(ctx: &mut Context, cmd: AuthCommand) -> Result<(), CliError> {
    match cmd {
        AuthCommand::Login(args) => login(ctx, args).await,
        AuthCommand::Logout(args) => logout(ctx, args).await,
        AuthCommand::Status => status(ctx).await,
        AuthCommand::Signup(args) => signup(ctx, args).await,
    }
}

async fn login(ctx: &mut Context, args: LoginArgs) -> Result<(), CliError> {
    let LoginArgs {
        token,
        token_stdin,
        email,
        password_stdin,
    } = args;
    ctx.require_existing_profile()?;
    let token = if let Some(email) = email {
        let password = if password_stdin {
            prompt::stdin_lines(1)?.remove(0)
        } else {
            prompt::password(&format!("Password for {email}: "), "--password-stdin")?
        };
        let session = ctx
            .anonymous_client()?
            .login(&LoginRequest { email, password })
            .await?;
        session.token
    } else if let Some(token) = token.filter(|t| !t.is_empty()) {
        token
    } else if token_stdin {
        prompt::stdin_lines(1)?.remove(0).trim().to_owned()
    } else if let (Some(token), Some(Source::Env)) = (ctx.token.clone(), ctx.token_source) {
        token
    } else {
        return Err(CliError::usage("nothing to log in with").hint(
            "pass --token TOKEN (or set SATUSKY_TOKEN), or --email EMAIL to log in with a password",
        ));
    };

    let client = ctx.client_with(token.clone())?;
    let me = client.me().await?;
    let org = choose_org(ctx, &client, &me).await?;

    let api_url = ctx.api_url.clone();
    let keep_url = matches!(ctx.api_url_source, Source::Flag | Source::Env);
    let profile = ctx.profile_mut()?;
    if keep_url {
        profile.api_url = Some(api_url.clone());
    }
    profile.token = Some(token);
    profile.email = Some(me.user.email.clone());
    profile.user_id = Some(me.user.id.clone());
    profile.org.clone_from(&org);
    ctx.save()?;

    note(&format!(
        "Logged in to {api_url} as {} (profile `{}`).",
        me.user.email, ctx.profile_name
    ));
    match &org {
        Some(org) => note(&format!("Using organization `{org}`.")),
        None => note(&format!(
            "No organization selected: `{0} org list` shows yours, `{0} org switch SLUG` picks one, `{0} org create SLUG` makes one.",
            ctx.prefix()
        )),
    }
    let status = status_of(ctx, me, org);
    ctx.printer.one(&status)?;
    Ok(())
}

/// The organization a fresh login uses: the token's own, else the only one,
/// else the one the profile already had if the user still belongs to it.
async fn choose_org(ctx: &Context, client: &Client, me: &Me) -> Result<Option<String>, CliError> {
    if let Some(org) = &me.token_org {
        return Ok(Some(org.clone()));
    }
    let orgs = client.list_all_orgs().await?;
    if let [only] = orgs.as_slice() {
        return Ok(Some(only.slug.clone()));
    }
    let previous = ctx.profile().and_then(|p| p.org.clone());
    Ok(previous.filter(|slug| orgs.iter().any(|o| &o.slug == slug)))
}

fn status_of(ctx: &Context, me: Me, org: Option<String>) -> AuthStatus {
    AuthStatus {
        profile: ctx.profile_name.clone(),
        api_url: ctx.api_url.clone(),
        user: me.user,
        auth: me.auth,
        org,
        token_org: me.token_org,
        expires_at: me.expires_at,
    }
}

async fn status(ctx: &mut Context) -> Result<(), CliError> {
    let me = ctx.client()?.me().await?;
    let org = ctx.profile().and_then(|p| p.org.clone());
    let status = status_of(ctx, me, org);
    ctx.printer.one(&status)?;
    Ok(())
}

async fn logout(ctx: &mut Context, args: LogoutArgs) -> Result<(), CliError> {
    let client = ctx.client()?;
    let token = client.token().unwrap_or_default().to_owned();
    let server = if args.all {
        client.revoke_all_sessions().await.map(|r| {
            note(&format!("Ended {} session(s).", r.revoked));
        })
    } else if token.starts_with("sk_sess_") {
        client.logout().await
    } else {
        note(
            "Personal tokens stay valid after logout; disable one with `1ctl token disable NAME`.",
        );
        Ok(())
    };
    // An already ended session is what logging out wants.
    let server = match server {
        Err(e)
            if e.code() == Some(ErrorCode::Unauthenticated)
                || e.code() == Some(ErrorCode::TokenExpired) =>
        {
            Ok(())
        }
        other => other,
    };

    let from_env = ctx.token_source == Some(Source::Env);
    if let Some(profile) = ctx.config.profiles.get_mut(&ctx.profile_name)
        && (profile.token.as_deref() == Some(token.as_str()) || !from_env)
    {
        profile.token = None;
    }
    ctx.save()?;
    if from_env {
        note("The token comes from SATUSKY_TOKEN; unset it too.");
    }
    if let Err(e) = server {
        return Err(with_local_note(e));
    }
    note(&format!("Logged out (profile `{}`).", ctx.profile_name));
    ctx.printer.data(&Done {
        kind: "profile",
        id: ctx.profile_name.clone(),
        action: "logged_out",
    })?;
    Ok(())
}

fn with_local_note(e: ClientError) -> CliError {
    note(
        "The token was removed from the profile, but the server could not end the session; it stays valid until it expires.",
    );
    e.into()
}

async fn signup(ctx: &mut Context, args: SignupArgs) -> Result<(), CliError> {
    let SignupArgs {
        email,
        name,
        password_stdin,
    } = args;
    let password = if password_stdin {
        prompt::stdin_lines(1)?.remove(0)
    } else {
        prompt::new_password("Choose a password: ", "--password-stdin")?
    };
    let user = ctx
        .anonymous_client()?
        .signup(&SignupRequest {
            email: email.clone(),
            password,
            name,
        })
        .await?;
    note(&format!(
        "Account created. Log in with `{} auth login --email {email}`.",
        ctx.prefix()
    ));
    ctx.printer.one(&user)?;
    Ok(())
}
