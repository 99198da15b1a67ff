//! Versions and aliases: publishing immutable snapshots of `$LATEST`, and the named pointers
//! (optionally splitting traffic between two versions) that invocations resolve.
//!
//! A published version is a copy of `$LATEST` under the next number; numbers are never
//! reused, so the function keeps `last_published` even when versions are deleted. Publishing
//! gives `$LATEST` a new `RevisionId`, as Lambda does; publishing again before `$LATEST`
//! changes returns the version already published. Aliases point to one version and may
//! send a share of invocations to a second, published one; the version that runs is drawn per
//! invocation in [`Engine::resolve_invocation`].

use std::sync::Arc;

use kiln_core::{
    AdditionalVersion, Alias, Function, FunctionName, FunctionState, FunctionVersion, Qualifier,
    StateInfo, VersionId,
};

use crate::error::AliasRule;
use crate::{Engine, EngineError, blocking, check_not_busy, check_revision, new_revision};

/// `PublishVersion`'s parameters.
#[derive(Debug, Default)]
pub struct PublishRequest {
    /// Only publish if `$LATEST`'s code has this `CodeSha256`.
    pub code_sha256: Option<String>,
    /// Overrides the function's description in the version.
    pub description: Option<String>,
    /// Only publish if `$LATEST`'s revision is this one.
    pub expected_revision: Option<String>,
}

/// `CreateAlias`'s parameters, validated for shape by the API layer.
#[derive(Debug)]
pub struct NewAlias {
    pub name: String,
    pub function_version: VersionId,
    pub description: String,
    pub routing: Option<AdditionalVersion>,
}

/// `UpdateAlias`'s parameters; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct AliasChange {
    pub function_version: Option<VersionId>,
    pub description: Option<String>,
    /// `Some(None)` removes the routing configuration.
    pub routing: Option<Option<AdditionalVersion>>,
    pub expected_revision: Option<String>,
}

/// Which version an invocation runs, and the ARN it was invoked through.
#[derive(Debug, Clone)]
pub struct InvocationTarget {
    pub function: Arc<Function>,
    pub version: VersionId,
    pub invoked_function_arn: String,
    /// The function's invocation counters, found in the same registry read.
    pub(crate) concurrency: Arc<crate::concurrency::FunctionConcurrency>,
}

impl Engine {
    /// Publishes `$LATEST` as a new version, or returns the latest published version if
    /// `$LATEST` has not changed since it was published.
    pub async fn publish_version(
        &self,
        name: &FunctionName,
        request: PublishRequest,
    ) -> Result<FunctionVersion, EngineError> {
        let _writer = self.inner.writer.lock().await;
        let function = self.function(name)?;
        check_revision(&function.latest, request.expected_revision.as_deref())?;
        if let Some(given) = request.code_sha256
            && given != function.latest.code.sha256_base64
        {
            return Err(EngineError::CodeShaMismatch {
                given,
                current: function.latest.code.sha256_base64.clone(),
            });
        }
        check_not_busy(&function)?;
        if let Some(unchanged) = function
            .published
            .values()
            .next_back()
            .filter(|published| unchanged_since(published, &function.latest))
        {
            return Ok(unchanged.clone());
        }
        let mut updated = (*function).clone();
        let published = publish_into(&mut updated, request.description);
        updated.latest.revision_id = new_revision();
        let store = Arc::clone(&self.inner.store);
        let record = updated.clone();
        let version = published.clone();
        blocking(move || {
            store.put_versions(
                &record.name,
                &[&version, &record.latest],
                record.last_published,
            )
        })
        .await??;
        self.inner.registry.put(updated);
        Ok(published)
    }

    /// An alias of a function, from the snapshot.
    pub fn alias(&self, name: &FunctionName, alias: &str) -> Result<Alias, EngineError> {
        self.function(name)?
            .aliases
            .get(alias)
            .cloned()
            .ok_or_else(|| EngineError::AliasNotFound {
                name: name.clone(),
                alias: alias.to_owned(),
            })
    }

    /// Creates an alias.
    pub async fn create_alias(
        &self,
        name: &FunctionName,
        new: NewAlias,
    ) -> Result<Alias, EngineError> {
        let _writer = self.inner.writer.lock().await;
        // Lambda names the target version in the 404 of a missing function.
        let function = self
            .function(name)
            .map_err(|_| EngineError::FunctionNotFound {
                name: name.clone(),
                qualifier: Some(new.function_version.as_lambda_string()),
            })?;
        if function.aliases.contains_key(&new.name) {
            return Err(EngineError::AliasExists {
                name: name.clone(),
                alias: new.name,
            });
        }
        check_alias_targets(&function, new.function_version, new.routing)?;
        let alias = Alias {
            name: new.name,
            function_version: new.function_version.into(),
            description: new.description,
            routing: new.routing,
            revision_id: new_revision(),
        };
        self.commit_alias(&function, alias).await
    }

    /// Changes an alias: its version, description or routing.
    pub async fn update_alias(
        &self,
        name: &FunctionName,
        alias_name: &str,
        change: AliasChange,
    ) -> Result<Alias, EngineError> {
        let _writer = self.inner.writer.lock().await;
        let function = self.function(name)?;
        let mut alias = function.aliases.get(alias_name).cloned().ok_or_else(|| {
            EngineError::AliasNotFound {
                name: name.clone(),
                alias: alias_name.to_owned(),
            }
        })?;
        if change
            .expected_revision
            .as_deref()
            .is_some_and(|expected| expected != alias.revision_id)
        {
            return Err(EngineError::RevisionMismatch);
        }
        if let Some(version) = change.function_version {
            alias.function_version = version.into();
        }
        if let Some(description) = change.description {
            alias.description = description;
        }
        if let Some(routing) = change.routing {
            alias.routing = routing;
        }
        check_alias_targets(&function, alias.version_id(), alias.routing)?;
        alias.revision_id = new_revision();
        self.commit_alias(&function, alias).await
    }

    /// Deletes an alias; deleting one that does not exist succeeds.
    pub async fn delete_alias(&self, name: &FunctionName, alias: &str) -> Result<(), EngineError> {
        let _writer = self.inner.writer.lock().await;
        let function = self.function(name)?;
        if !function.aliases.contains_key(alias) {
            return Ok(());
        }
        let store = Arc::clone(&self.inner.store);
        let (owner, deleted) = (name.clone(), alias.to_owned());
        blocking(move || store.delete_alias(&owner, &deleted)).await??;
        let mut updated = (*function).clone();
        updated.aliases.remove(alias);
        // The store deleted the alias's provisioned concurrency with it.
        let had_provisioned = updated.provisioned_concurrency.remove(alias).is_some();
        self.inner.registry.put(updated);
        self.forget_event_invoke_configs(name, Some(alias)).await?;
        if had_provisioned {
            self.sync_provisioned(name);
        }
        Ok(())
    }

    async fn commit_alias(&self, function: &Function, alias: Alias) -> Result<Alias, EngineError> {
        let store = Arc::clone(&self.inner.store);
        let (owner, record) = (function.name.clone(), alias.clone());
        blocking(move || store.put_alias(&owner, &record)).await??;
        let mut updated = function.clone();
        updated.aliases.insert(alias.name.clone(), alias.clone());
        self.inner.registry.put(updated);
        if function.provisioned_concurrency.contains_key(&alias.name) {
            // The alias's provisioned concurrency moves with it to its new version.
            self.sync_provisioned(&function.name);
        }
        Ok(alias)
    }

    /// The version an invocation of `name` (qualified by `qualifier`) runs. Through an alias
    /// with routing, the version is drawn by the alias's weights; Lambda's 404 names what was
    /// asked for (`$LATEST` when unqualified).
    pub fn resolve_invocation(
        &self,
        name: &FunctionName,
        qualifier: Option<&Qualifier>,
    ) -> Result<InvocationTarget, EngineError> {
        let not_found = || EngineError::FunctionNotFound {
            name: name.clone(),
            qualifier: Some(
                qualifier.map_or_else(|| Qualifier::LATEST.to_owned(), Qualifier::as_lambda_string),
            ),
        };
        let (function, concurrency) = self
            .inner
            .registry
            .get_with_concurrency(name)
            .ok_or_else(not_found)?;
        let version = match qualifier {
            None => VersionId::Latest,
            Some(Qualifier::Version(id)) => *id,
            Some(Qualifier::Alias(alias)) => function
                .aliases
                .get(alias)
                .ok_or_else(not_found)?
                .pick_version(fastrand::f64()),
        };
        if function.version(version).is_none() {
            return Err(not_found());
        }
        let invoked_function_arn = match qualifier {
            None => self.inner.account.function_arn(name),
            Some(qualifier) => self.inner.account.qualified_function_arn(name, qualifier),
        };
        Ok(InvocationTarget {
            function,
            version,
            invoked_function_arn,
            concurrency,
        })
    }
}

/// Adds a published copy of `$LATEST` to `function` under the next number and returns it.
/// The copy keeps `$LATEST`'s state: a version published while its code deploys becomes
/// `Active` with it.
pub(crate) fn publish_into(
    function: &mut Function,
    description: Option<String>,
) -> FunctionVersion {
    let number = function.last_published + 1;
    let mut published = function.latest.clone();
    published.version = VersionId::Published(number).into();
    published.revision_id = new_revision();
    if let Some(description) = description {
        published.config.description = description;
    }
    if published.state.state == FunctionState::Pending
        || function
            .latest
            .last_update
            .as_ref()
            .is_some_and(|update| update.status == kiln_core::LastUpdateStatus::InProgress)
    {
        // A version published with new code is being created, whatever `$LATEST` was.
        published.state = StateInfo {
            state: FunctionState::Pending,
            reason: Some("The function is being created.".to_owned()),
            reason_code: Some("Creating".to_owned()),
        };
        published.last_update = None;
    }
    function.last_published = number;
    function.published.insert(number, published.clone());
    published
}

/// Whether `latest` is still what `published` was copied from. Every change to `$LATEST`
/// (code or configuration) gives it a new, strictly greater `last_modified`, and a version
/// keeps the one it was copied with. Comparing contents instead would miss what AWS counts
/// as a change: a new description of `$LATEST` makes a new version (recorded in
/// TestLambdaVersions::test_version_lifecycle), while the version's own `Description`
/// given to PublishVersion does not.
fn unchanged_since(published: &FunctionVersion, latest: &FunctionVersion) -> bool {
    published.last_modified == latest.last_modified
        && published.code.sha256_hex == latest.code.sha256_hex
}

/// Lambda's rules for what an alias may point to, in the order Lambda checks them.
fn check_alias_targets(
    function: &Function,
    primary: VersionId,
    routing: Option<AdditionalVersion>,
) -> Result<(), EngineError> {
    let missing = |version: VersionId| EngineError::FunctionNotFound {
        name: function.name.clone(),
        qualifier: Some(version.as_lambda_string()),
    };
    let primary_version = function.version(primary).ok_or_else(|| missing(primary))?;
    let Some(routing) = routing else {
        return Ok(());
    };
    let additional = VersionId::Published(routing.version);
    let additional_version = function
        .version(additional)
        .ok_or_else(|| missing(additional))?;
    if additional == primary {
        return Err(EngineError::InvalidAlias(AliasRule::AdditionalIsPrimary(
            routing.version,
        )));
    }
    if primary == VersionId::Latest {
        return Err(EngineError::InvalidAlias(AliasRule::RoutingFromLatest));
    }
    if primary_version.config.role != additional_version.config.role {
        return Err(EngineError::InvalidAlias(AliasRule::DifferentRoles));
    }
    if primary_version.config.dead_letter != additional_version.config.dead_letter {
        return Err(EngineError::InvalidAlias(
            AliasRule::DifferentDeadLetterQueues,
        ));
    }
    Ok(())
}
