//! Every kind, by its `kind:` name.

use crate::model::published::MetricSpec;
use std::collections::BTreeMap;
use std::sync::Arc;

use super::contract::{Ctx, Kind};
use super::erased::{DynKind, Erased, SchemaOf};
use super::{
    agent_runtime, image, parameter, repository, resource_server, role, runtime_endpoint, secret,
    token, user, user_pool, user_pool_client, user_pool_domain,
};
use crate::model::schema::{Schema, Schemas};

/// All kinds, by their `kind:` name: schemas always, live kinds when AWS clients exist.
#[derive(Clone)]
pub struct Registry {
    ctx: Option<Arc<Ctx>>,
    schemas: BTreeMap<&'static str, Arc<dyn Schema>>,
    live: BTreeMap<&'static str, Arc<dyn DynKind>>,
}

impl Registry {
    /// Schemas only: enough to load and validate manifests offline.
    pub fn offline() -> Self {
        Self::with(None)
    }

    /// Every kind, wired to the given AWS clients.
    pub fn live(ctx: Arc<Ctx>) -> Self {
        Self::with(Some(ctx))
    }

    fn with(ctx: Option<Arc<Ctx>>) -> Self {
        let mut r = Self {
            ctx,
            schemas: BTreeMap::new(),
            live: BTreeMap::new(),
        };
        // Adding a kind: one file in this folder, one line here.
        r.register::<user_pool::UserPool>();
        r.register::<user_pool_client::UserPoolClient>();
        r.register::<resource_server::ResourceServer>();
        r.register::<user_pool_domain::UserPoolDomain>();
        r.register::<user::User>();
        r.register::<role::Role>();
        r.register::<repository::Repository>();
        r.register::<image::Image>();
        r.register::<agent_runtime::AgentRuntime>();
        r.register::<runtime_endpoint::RuntimeEndpoint>();
        r.register::<secret::Secret>();
        r.register::<token::Token>();
        r.register::<parameter::Parameter>();
        r
    }

    fn register<K: Kind>(&mut self) {
        self.schemas
            .insert(K::KIND, Arc::new(SchemaOf::<K>(std::marker::PhantomData)));
        if let Some(ctx) = &self.ctx {
            self.live
                .insert(K::KIND, Arc::new(Erased(K::new(ctx.clone()))));
        }
    }

    /// No kinds at all: tests add their own with [`Registry::with_kind`].
    #[cfg(test)]
    pub(crate) fn empty() -> Self {
        Self {
            ctx: None,
            schemas: BTreeMap::new(),
            live: BTreeMap::new(),
        }
    }

    /// Add a kind built by the caller (a fake over in-memory state), schema and live.
    #[cfg(test)]
    pub(crate) fn with_kind<K: Kind>(mut self, kind: K) -> Self {
        self.schemas
            .insert(K::KIND, Arc::new(SchemaOf::<K>(std::marker::PhantomData)));
        self.live.insert(K::KIND, Arc::new(Erased(kind)));
        self
    }

    pub fn schema(&self, kind: &str) -> Option<&Arc<dyn Schema>> {
        self.schemas.get(kind)
    }

    /// The live kind; `None` for an unknown kind or an offline registry.
    pub fn get(&self, kind: &str) -> Option<&Arc<dyn DynKind>> {
        self.live.get(kind)
    }

    /// The metrics every kind publishes, with the kind.
    pub fn metrics(&self) -> Vec<(&'static str, MetricSpec)> {
        self.schemas
            .iter()
            .flat_map(|(kind, s)| s.metrics().iter().map(move |m| (*kind, *m)))
            .collect()
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.schemas.keys().copied().collect()
    }
}

impl Schemas for Registry {
    fn schema(&self, kind: &str) -> Option<&dyn Schema> {
        self.schemas.get(kind).map(|s| s.as_ref())
    }

    fn names(&self) -> Vec<&'static str> {
        Registry::names(self)
    }
}
