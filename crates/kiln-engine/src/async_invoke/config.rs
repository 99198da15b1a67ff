//! Event invoke configs: the commands that read and change them.
//!
//! They are kept per function and qualifier (`$LATEST`, a version or an alias), persisted in
//! the metadata store (deleted with their function), and held in memory for the dispatcher,
//! which looks up the config of the qualifier an event was invoked with.

use std::collections::BTreeMap;
use std::sync::Arc;

use kiln_core::{EventInvokeConfig, Function, FunctionName, Qualifier, VersionId, now_millis};

use crate::error::{DestinationRule, EngineError};
use crate::{Engine, blocking};

/// A change to a qualifier's config. For a put, absent fields are unset; for an update they
/// are left as they are (`Some(None)` clears a destination).
#[derive(Debug, Clone, Default)]
pub struct EventInvokeConfigChange {
    pub maximum_retry_attempts: Option<u32>,
    pub maximum_event_age_seconds: Option<u32>,
    pub on_success: Option<Option<String>>,
    pub on_failure: Option<Option<String>>,
}

/// Configs by function, then qualifier.
pub(crate) type ConfigMap = BTreeMap<FunctionName, BTreeMap<String, EventInvokeConfig>>;

impl Engine {
    /// PutFunctionEventInvokeConfig (`replace`) or UpdateFunctionEventInvokeConfig.
    pub async fn put_event_invoke_config(
        &self,
        name: &FunctionName,
        qualifier: Option<&Qualifier>,
        change: EventInvokeConfigChange,
        replace: bool,
    ) -> Result<EventInvokeConfig, EngineError> {
        let _writer = self.inner.writer.lock().await;
        let function = self.function(name)?;
        let qualifier_text = existing_qualifier(&function, qualifier)?;
        for destination in [&change.on_success, &change.on_failure]
            .into_iter()
            .flatten()
            .flatten()
        {
            self.check_destination(name, destination)?;
        }
        let existing = self.event_invoke_config_of(name, &qualifier_text);
        let mut config = match (replace, existing) {
            (true, _) => EventInvokeConfig {
                qualifier: qualifier_text.clone(),
                maximum_retry_attempts: None,
                maximum_event_age_seconds: None,
                on_success: None,
                on_failure: None,
                last_modified: 0,
            },
            (false, Some(existing)) => existing,
            (false, None) => {
                return Err(EngineError::EventInvokeConfigNotFound {
                    name: name.clone(),
                    qualifier: qualifier_text,
                });
            }
        };
        if change.maximum_retry_attempts.is_some() || replace {
            config.maximum_retry_attempts = change.maximum_retry_attempts;
        }
        if change.maximum_event_age_seconds.is_some() || replace {
            config.maximum_event_age_seconds = change.maximum_event_age_seconds;
        }
        if let Some(on_success) = change.on_success {
            config.on_success = on_success;
        } else if replace {
            config.on_success = None;
        }
        if let Some(on_failure) = change.on_failure {
            config.on_failure = on_failure;
        } else if replace {
            config.on_failure = None;
        }
        config.last_modified = now_millis();
        let store = Arc::clone(&self.inner.store);
        let (owner, record) = (name.clone(), config.clone());
        blocking(move || store.put_event_invoke_config(&owner, &record)).await??;
        self.configs_mut()
            .entry(name.clone())
            .or_default()
            .insert(qualifier_text, config.clone());
        Ok(config)
    }

    /// GetFunctionEventInvokeConfig.
    pub fn event_invoke_config(
        &self,
        name: &FunctionName,
        qualifier: Option<&Qualifier>,
    ) -> Result<EventInvokeConfig, EngineError> {
        let qualifier_text = qualifier_text(qualifier);
        self.event_invoke_config_of(name, &qualifier_text).ok_or(
            EngineError::EventInvokeConfigNotFound {
                name: name.clone(),
                qualifier: qualifier_text,
            },
        )
    }

    /// DeleteFunctionEventInvokeConfig.
    pub async fn delete_event_invoke_config(
        &self,
        name: &FunctionName,
        qualifier: Option<&Qualifier>,
    ) -> Result<(), EngineError> {
        let _writer = self.inner.writer.lock().await;
        let config = self.event_invoke_config(name, qualifier)?;
        let store = Arc::clone(&self.inner.store);
        let owner = name.clone();
        let stored_qualifier = config.qualifier.clone();
        blocking(move || store.delete_event_invoke_config(&owner, &stored_qualifier)).await??;
        if let Some(configs) = self.configs_mut().get_mut(name) {
            configs.remove(&config.qualifier);
        }
        Ok(())
    }

    /// ListFunctionEventInvokeConfigs: `$LATEST`, then versions in order, then aliases.
    pub fn list_event_invoke_configs(
        &self,
        name: &FunctionName,
    ) -> Result<Vec<EventInvokeConfig>, EngineError> {
        self.function(name)?;
        let mut configs: Vec<EventInvokeConfig> = self
            .configs()
            .get(name)
            .map(|configs| configs.values().cloned().collect())
            .unwrap_or_default();
        configs.sort_by_key(|config| match Qualifier::parse(&config.qualifier) {
            Ok(Qualifier::Version(VersionId::Latest)) => (0, 0, String::new()),
            Ok(Qualifier::Version(VersionId::Published(number))) => (1, number, String::new()),
            _ => (2, 0, config.qualifier.clone()),
        });
        Ok(configs)
    }

    /// The config of one qualifier, if any.
    pub(crate) fn event_invoke_config_of(
        &self,
        name: &FunctionName,
        qualifier: &str,
    ) -> Option<EventInvokeConfig> {
        self.configs().get(name)?.get(qualifier).cloned()
    }

    /// Forgets the configs of a deleted function, or of one of its deleted qualifiers (the
    /// store deletes a function's rows by cascade; a qualifier's row here).
    pub(crate) async fn forget_event_invoke_configs(
        &self,
        name: &FunctionName,
        qualifier: Option<&str>,
    ) -> Result<(), EngineError> {
        match qualifier {
            None => {
                self.configs_mut().remove(name);
            }
            Some(qualifier) => {
                let known = self
                    .configs_mut()
                    .get_mut(name)
                    .and_then(|configs| configs.remove(qualifier))
                    .is_some();
                if known {
                    let store = Arc::clone(&self.inner.store);
                    let (owner, deleted) = (name.clone(), qualifier.to_owned());
                    blocking(move || store.delete_event_invoke_config(&owner, &deleted)).await??;
                }
            }
        }
        Ok(())
    }

    /// Destinations must be an SQS queue or another existing function.
    fn check_destination(&self, name: &FunctionName, destination: &str) -> Result<(), EngineError> {
        match destination_service(destination) {
            Some("sqs") => Ok(()),
            Some("lambda") => {
                let (target, _) = function_of_arn(destination).ok_or_else(|| {
                    EngineError::InvalidDestination(DestinationRule::FunctionMissing {
                        arn: destination.to_owned(),
                    })
                })?;
                if &target == name {
                    return Err(EngineError::InvalidDestination(
                        DestinationRule::ItselfAsDestination,
                    ));
                }
                if self.inner.registry.get(&target).is_none() {
                    return Err(EngineError::InvalidDestination(
                        DestinationRule::FunctionMissing {
                            arn: destination.to_owned(),
                        },
                    ));
                }
                Ok(())
            }
            Some(service @ ("sns" | "events" | "s3")) => Err(EngineError::InvalidDestination(
                DestinationRule::UnsupportedService {
                    arn: destination.to_owned(),
                    service: service.to_owned(),
                },
            )),
            _ => Err(EngineError::InvalidDestination(
                DestinationRule::NotADestination,
            )),
        }
    }

    fn configs(&self) -> std::sync::RwLockReadGuard<'_, ConfigMap> {
        self.inner
            .async_invocations
            .configs
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn configs_mut(&self) -> std::sync::RwLockWriteGuard<'_, ConfigMap> {
        self.inner
            .async_invocations
            .configs
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The qualifier a config is stored under: `$LATEST` when none was given.
pub(crate) fn qualifier_text(qualifier: Option<&Qualifier>) -> String {
    qualifier.map_or_else(|| Qualifier::LATEST.to_owned(), Qualifier::as_lambda_string)
}

/// The qualifier's text, if the function has that version or alias.
fn existing_qualifier(
    function: &Function,
    qualifier: Option<&Qualifier>,
) -> Result<String, EngineError> {
    let exists = match qualifier {
        None => true,
        Some(Qualifier::Version(id)) => function.version(*id).is_some(),
        Some(Qualifier::Alias(alias)) => function.aliases.contains_key(alias),
    };
    if exists {
        Ok(qualifier_text(qualifier))
    } else {
        Err(EngineError::FunctionNotFound {
            name: function.name.clone(),
            qualifier: Some(qualifier_text(qualifier)),
        })
    }
}

/// The service of an ARN (`arn:PARTITION:SERVICE:...`).
pub(crate) fn destination_service(arn: &str) -> Option<&str> {
    let mut parts = arn.splitn(4, ':');
    (parts.next()? == "arn").then_some(())?;
    parts.next()?;
    parts.next()
}

/// The function (and qualifier) a Lambda ARN names: `arn:P:lambda:R:A:function:NAME[:Q]`.
pub(crate) fn function_of_arn(arn: &str) -> Option<(FunctionName, Option<Qualifier>)> {
    let parts: Vec<&str> = arn.split(':').collect();
    if parts.len() < 7 || parts.len() > 8 || parts[2] != "lambda" || parts[5] != "function" {
        return None;
    }
    let name = FunctionName::parse(parts[6]).ok()?;
    let qualifier = match parts.get(7) {
        Some(text) => Some(Qualifier::parse(text).ok()?),
        None => None,
    };
    Some((name, qualifier))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destination_arns_are_classified() {
        assert_eq!(
            destination_service("arn:aws:sqs:us-east-1:000000000000:q"),
            Some("sqs")
        );
        assert_eq!(destination_service("nope"), None);
        let (name, qualifier) =
            function_of_arn("arn:aws:lambda:us-east-1:000000000000:function:f:live").unwrap();
        assert_eq!(name.as_str(), "f");
        assert_eq!(qualifier, Some(Qualifier::Alias("live".into())));
        assert!(function_of_arn("arn:aws:lambda:us-east-1:000000000000:layer:l").is_none());
    }
}
