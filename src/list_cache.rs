//! Shared list results (after kube-runtime's reflector): one paged listing of a service's
//! resources serves every object of that kind, instead of each observe paging through the
//! whole list to find its own name (which made a round O(N²) in the number of stacks).
//!
//! A listing is reused while it is younger than its maximum age, taken again when the
//! controller's own write left its outcome unknown ([`ListCache::invalidate`]), and edited
//! in place when a write's answer says what changed ([`ListCache::edit`]). Only one fetch
//! runs at a time per cache: callers that arrive during a fetch wait for it and share it.
//!
//! A stale listing may say "absent" about something that exists. A caller that would act
//! on absence (create) asks again with `fresh_since` set to when it started looking: the
//! answer then comes from a listing begun after that moment. So a stale cache can delay a
//! create, never duplicate one.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_sdk_ecr::types::Repository;
use aws_sdk_iam::types::{Role, RoleDetail};
use aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretOutput;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, FinalizerInterceptorContextRef, Input,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::aws::{Access, access_of};
use crate::error::Result;

/// How long a listing serves lookups before it is taken again. Several listings fit in a
/// resync period, so a resource created or deleted behind the controller's back is seen
/// within one resync; one listing serves every object reconciled meanwhile.
pub const LIST_MAX_AGE: Duration = Duration::from_secs(10);

struct Listing<T> {
    /// When the fetch began: everything that existed before then is in it.
    started: Instant,
    /// When it arrived: its age is counted from then.
    fetched: Instant,
    /// The cache's generation when the fetch began: an invalidation since makes it stale.
    generation: u64,
    items: T,
}

/// One service's listing of one kind of resource, shared by every object of that kind.
pub struct ListCache<T> {
    max_age: Duration,
    listing: Mutex<Option<Listing<T>>>,
    /// Moved by every invalidation. A listing is used only in the generation its fetch
    /// began in, so neither a write that lands during a fetch nor a fetch cancelled
    /// half-way (its caller gone) can leave an invalidated listing in use.
    generation: AtomicU64,
}

impl<T> std::fmt::Debug for ListCache<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListCache")
            .field("max_age", &self.max_age)
            .finish_non_exhaustive()
    }
}

impl<T> Default for ListCache<T> {
    fn default() -> Self {
        Self::new(LIST_MAX_AGE)
    }
}

/// A lookup's answer and when the listing it came from began.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found<V> {
    pub value: V,
    pub listed_at: Instant,
}

impl<T> ListCache<T> {
    pub fn new(max_age: Duration) -> Self {
        Self {
            max_age,
            listing: Mutex::new(None),
            generation: AtomicU64::new(0),
        }
    }

    /// Look something up in the listing, fetching it first when there is none, it is
    /// older than the maximum age, it was invalidated, or it began before `fresh_since`.
    /// A failed fetch is returned and nothing is cached.
    pub async fn lookup<V, F, Fut>(
        &self,
        fresh_since: Option<Instant>,
        fetch: F,
        find: impl FnOnce(&T) -> V,
    ) -> Result<Found<V>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut slot = self.listing.lock().await;
        let usable = slot.as_ref().is_some_and(|l| {
            l.generation == self.generation.load(Ordering::SeqCst)
                // Aged from when it arrived: a listing slower than the maximum age to
                // fetch is still of use once.
                && l.fetched.elapsed() < self.max_age
                && fresh_since.is_none_or(|t| l.started >= t)
        });
        if !usable {
            let started = Instant::now();
            let generation = self.generation.load(Ordering::SeqCst);
            // Dropped first: a fetch that fails, or is abandoned, leaves no listing behind.
            *slot = None;
            let items = fetch().await?;
            *slot = Some(Listing {
                started,
                fetched: Instant::now(),
                generation,
                items,
            });
        }
        let listing = slot.as_ref().ok_or_else(|| {
            crate::error::ReconcileError::recoverable(
                crate::reason::Reason::ListCache,
                "no listing after a fetch",
            )
        })?;
        Ok(Found {
            value: find(&listing.items),
            listed_at: listing.started,
        })
    }

    /// Apply what one of the controller's writes is known to have changed (a create's
    /// answer, a delete done) to the current listing, if there is one.
    pub async fn edit(&self, change: impl FnOnce(&mut T)) {
        if let Some(listing) = self.listing.lock().await.as_mut() {
            change(&mut listing.items);
        }
    }

    /// The next lookup fetches again (a write whose outcome is unknown).
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }
}

/// Resources by name: what a name lookup needs from a listing. Names need not be unique
/// (Cognito user pools), so each name maps to every ID listed under it. A listing may
/// also record a stamp per ID (version, last change, status) that changes whenever the
/// resource's configuration does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ByName {
    ids: BTreeMap<String, Vec<String>>,
    stamps: BTreeMap<String, String>,
}

impl ByName {
    pub fn insert(&mut self, name: impl Into<String>, id: impl Into<String>) {
        let id = id.into();
        let ids = self.ids.entry(name.into()).or_default();
        if !ids.contains(&id) {
            ids.push(id);
        }
    }

    /// [`ByName::insert`], with the resource's stamp.
    pub fn insert_stamped(&mut self, name: &str, id: &str, stamp: String) {
        self.insert(name, id);
        self.stamps.insert(id.to_string(), stamp);
    }

    pub fn remove(&mut self, name: &str, id: &str) {
        if let Some(ids) = self.ids.get_mut(name) {
            ids.retain(|i| i != id);
            if ids.is_empty() {
                self.ids.remove(name);
            }
        }
        self.stamps.remove(id);
    }

    /// Every ID listed under `name`.
    pub fn ids(&self, name: &str) -> Vec<String> {
        self.ids.get(name).cloned().unwrap_or_default()
    }

    /// The stamp listed for `id`.
    pub fn stamp(&self, id: &str) -> Option<String> {
        self.stamps.get(id).cloned()
    }
}

/// Keys the controller wrote to, and when: a listing that began before a write, or too
/// soon after it for the service's listings to show it (they are eventually consistent),
/// no longer describes the key. Marked from a synchronous hook (the SDK interceptor), so
/// it needs no async lock. Marks older than that are dropped as new ones come.
#[derive(Debug)]
pub struct Written {
    /// How long after a write the service's listings may still show what was there before.
    settle: Duration,
    marks: std::sync::Mutex<BTreeMap<String, Instant>>,
}

impl Default for Written {
    fn default() -> Self {
        Self::settling(Duration::ZERO)
    }
}

impl Written {
    pub fn settling(settle: Duration) -> Self {
        Self {
            settle,
            marks: std::sync::Mutex::new(BTreeMap::new()),
        }
    }

    /// `key` was written just now.
    pub fn mark(&self, key: &str) {
        if let Ok(mut m) = self.marks.lock() {
            let now = Instant::now();
            // Keep the map to what can still matter.
            let keep = self.settle.max(LIST_MAX_AGE);
            m.retain(|_, at| now.duration_since(*at) <= keep);
            m.insert(key.to_string(), now);
        }
    }

    /// Whether a listing begun at `listed_at` may not show the last write to `key`.
    pub fn since(&self, key: &str, listed_at: Instant) -> bool {
        self.marks
            .lock()
            .map(|m| m.get(key).is_some_and(|t| *t + self.settle >= listed_at))
            .unwrap_or(true)
    }
}

/// Secrets by name, as ListSecrets describes them (tags, ARN, description, deletion date:
/// what DescribeSecret would say).
pub type SecretsByName = BTreeMap<String, DescribeSecretOutput>;

/// A secret's name from its name or ARN (`arn:…:secret:NAME-xxxxxx`: Secrets Manager adds
/// a hyphen and six characters to the name).
pub fn secret_name(id: &str) -> &str {
    if !id.starts_with("arn:") {
        return id;
    }
    let name = id.split_once(":secret:").map_or(id, |(_, n)| n);
    match name.len().checked_sub(7) {
        Some(cut) if name.as_bytes().get(cut) == Some(&b'-') => &name[..cut],
        _ => name,
    }
}

/// A role as two listings describe it: GetAccountAuthorizationDetails (trust policy,
/// inline and attached policies, tags) and ListRoles (description, maximum session
/// duration), together what GetRole and the policy reads would say.
#[derive(Debug, Clone)]
pub struct ListedRole {
    pub detail: RoleDetail,
    pub role: Role,
}

/// Roles by name (only those both listings hold).
pub type RolesByName = BTreeMap<String, ListedRole>;

/// How long Secrets Manager's ListSecrets may lag behind a write ("it might not reflect
/// changes from the last five minutes", says its API reference).
pub const SECRETS_SETTLE: Duration = Duration::from_secs(300);
/// How long IAM's and ECR's listings are taken to lag behind a write (IAM documents its
/// changes as eventually consistent, usually within seconds).
pub const LISTING_SETTLE: Duration = Duration::from_secs(30);

/// The listings the kinds share, one per service and kind that is found by listing.
#[derive(Debug)]
pub struct ListCaches {
    /// ListUserPools: pool IDs by pool name.
    pub user_pools: ListCache<ByName>,
    /// ListAgentRuntimes: runtime IDs by runtime name.
    pub agent_runtimes: ListCache<ByName>,
    /// ListSecrets (the controller's, by owner tag): what DescribeSecret says, by name.
    pub secrets: ListCache<SecretsByName>,
    /// Secrets the controller wrote to, by name (see [`WriteWatch`]).
    pub secrets_written: Written,
    /// GetAccountAuthorizationDetails (roles only) and ListRoles: every role, by name.
    pub roles: ListCache<RolesByName>,
    /// Roles the controller wrote to, by name (see [`WriteWatch`]).
    pub roles_written: Written,
    /// DescribeRepositories: every ECR repository, by name.
    pub repositories: ListCache<BTreeMap<String, Repository>>,
    /// Repositories the controller wrote to, by name (see [`WriteWatch`]).
    pub repositories_written: Written,
}

impl Default for ListCaches {
    fn default() -> Self {
        Self {
            user_pools: ListCache::default(),
            agent_runtimes: ListCache::default(),
            secrets: ListCache::default(),
            secrets_written: Written::settling(SECRETS_SETTLE),
            roles: ListCache::default(),
            roles_written: Written::settling(LISTING_SETTLE),
            repositories: ListCache::default(),
            repositories_written: Written::settling(LISTING_SETTLE),
        }
    }
}

/// The secret a Secrets Manager write is about, when the input names one.
fn secret_written(input: &Input) -> Option<&str> {
    use aws_sdk_secretsmanager::operation as op;
    macro_rules! by_id {
        ($($m:ident::$t:ident),*) => {
            $(if let Some(i) = input.downcast_ref::<op::$m::$t>() {
                return i.secret_id();
            })*
        };
    }
    by_id!(
        tag_resource::TagResourceInput,
        untag_resource::UntagResourceInput,
        restore_secret::RestoreSecretInput,
        update_secret::UpdateSecretInput,
        delete_secret::DeleteSecretInput,
        put_secret_value::PutSecretValueInput,
        rotate_secret::RotateSecretInput,
        cancel_rotate_secret::CancelRotateSecretInput,
        update_secret_version_stage::UpdateSecretVersionStageInput,
        put_resource_policy::PutResourcePolicyInput,
        delete_resource_policy::DeleteResourcePolicyInput,
        replicate_secret_to_regions::ReplicateSecretToRegionsInput,
        remove_regions_from_replication::RemoveRegionsFromReplicationInput,
        stop_replication_to_replica::StopReplicationToReplicaInput
    );
    input
        .downcast_ref::<op::create_secret::CreateSecretInput>()
        .and_then(|i| i.name())
}

/// The role an IAM write is about, when the input names one.
fn role_written(input: &Input) -> Option<&str> {
    use aws_sdk_iam::operation as op;
    macro_rules! by_name {
        ($($m:ident::$t:ident),*) => {
            $(if let Some(i) = input.downcast_ref::<op::$m::$t>() {
                return i.role_name();
            })*
        };
    }
    by_name!(
        create_role::CreateRoleInput,
        delete_role::DeleteRoleInput,
        update_role::UpdateRoleInput,
        update_role_description::UpdateRoleDescriptionInput,
        update_assume_role_policy::UpdateAssumeRolePolicyInput,
        put_role_policy::PutRolePolicyInput,
        delete_role_policy::DeleteRolePolicyInput,
        attach_role_policy::AttachRolePolicyInput,
        detach_role_policy::DetachRolePolicyInput,
        tag_role::TagRoleInput,
        untag_role::UntagRoleInput,
        put_role_permissions_boundary::PutRolePermissionsBoundaryInput,
        delete_role_permissions_boundary::DeleteRolePermissionsBoundaryInput
    );
    None
}

/// The repository an ECR write is about, when the input names one.
fn repository_written(input: &Input) -> Option<&str> {
    use aws_sdk_ecr::operation as op;
    macro_rules! by_name {
        ($($m:ident::$t:ident),*) => {
            $(if let Some(i) = input.downcast_ref::<op::$m::$t>() {
                return i.repository_name();
            })*
        };
    }
    by_name!(
        create_repository::CreateRepositoryInput,
        delete_repository::DeleteRepositoryInput,
        put_image_scanning_configuration::PutImageScanningConfigurationInput,
        put_image_tag_mutability::PutImageTagMutabilityInput,
        put_lifecycle_policy::PutLifecyclePolicyInput,
        delete_lifecycle_policy::DeleteLifecyclePolicyInput,
        set_repository_policy::SetRepositoryPolicyInput,
        delete_repository_policy::DeleteRepositoryPolicyInput,
        put_image::PutImageInput,
        batch_delete_image::BatchDeleteImageInput,
        initiate_layer_upload::InitiateLayerUploadInput,
        upload_layer_part::UploadLayerPartInput,
        complete_layer_upload::CompleteLayerUploadInput
    );
    // Tagging names the repository by its ARN: arn:…:repository/NAME.
    let arn = input
        .downcast_ref::<op::tag_resource::TagResourceInput>()
        .and_then(|i| i.resource_arn())
        .or_else(|| {
            input
                .downcast_ref::<op::untag_resource::UntagResourceInput>()
                .and_then(|i| i.resource_arn())
        })?;
    arn.split_once(":repository/").map(|(_, name)| name)
}

/// The secret a write in flight is about (kept in the operation's config bag between the
/// interceptor's hooks).
#[derive(Debug, Clone)]
enum PendingWrite {
    Secret(String),
    Role(String),
    Repository(String),
    /// A write to a listed service whose resource the input does not name.
    Unknown(&'static str),
}

impl Storable for PendingWrite {
    type Storer = StoreReplace<Self>;
}

/// Keeps the shared listings true to the controller's own writes, whichever code makes
/// them: a Secrets Manager (IAM, ECR) write marks its secret (role, repository) as written
/// once it has been answered (or lost), so lookups read it directly until a listing begun afterwards; a
/// write whose resource is not known from its input invalidates the whole listing.
#[derive(Debug, Clone)]
pub struct WriteWatch(pub std::sync::Arc<ListCaches>);

impl Intercept for WriteWatch {
    fn name(&self) -> &'static str {
        "WriteWatch"
    }

    // Not `read_before_execution`: a client's interceptors run that hook before the
    // operation's configuration, its metadata included, is in the bag.
    fn read_before_serialization(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> std::result::Result<(), BoxError> {
        let Some(meta) = cfg.load::<Metadata>() else {
            return Ok(());
        };
        if access_of(meta.name()) != Access::Write {
            return Ok(());
        }
        let input = context.input();
        let pending = match meta.service() {
            SECRETS_MANAGER => match secret_written(input) {
                Some(id) => PendingWrite::Secret(secret_name(id).to_string()),
                None => PendingWrite::Unknown(SECRETS_MANAGER),
            },
            IAM => match role_written(input) {
                Some(name) => PendingWrite::Role(name.to_string()),
                None => PendingWrite::Unknown(IAM),
            },
            ECR => match repository_written(input) {
                Some(name) => PendingWrite::Repository(name.to_string()),
                None => PendingWrite::Unknown(ECR),
            },
            _ => return Ok(()),
        };
        cfg.interceptor_state().store_put(pending);
        Ok(())
    }

    fn read_after_execution(
        &self,
        _context: &FinalizerInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> std::result::Result<(), BoxError> {
        match cfg.load::<PendingWrite>() {
            Some(PendingWrite::Secret(name)) => self.0.secrets_written.mark(name),
            Some(PendingWrite::Role(name)) => self.0.roles_written.mark(name),
            Some(PendingWrite::Repository(name)) => self.0.repositories_written.mark(name),
            Some(PendingWrite::Unknown(SECRETS_MANAGER)) => self.0.secrets.invalidate(),
            Some(PendingWrite::Unknown(ECR)) => self.0.repositories.invalidate(),
            Some(PendingWrite::Unknown(_)) => self.0.roles.invalidate(),
            None => {}
        }
        Ok(())
    }
}

/// The SDK's names for the listed services in operation metadata.
const SECRETS_MANAGER: &str = "Secrets Manager";
const IAM: &str = "IAM";
const ECR: &str = "ECR";

/// Find the IDs listed under `name`; when the listing has none and it began before this
/// call, ask a listing begun since, so that "absent" is never an old answer.
pub async fn ids_named<F, Fut>(
    cache: &ListCache<ByName>,
    name: &str,
    fetch: F,
) -> Result<Found<Vec<String>>>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<ByName>>,
{
    let asked = Instant::now();
    let found = cache.lookup(None, &fetch, |m| m.ids(name)).await?;
    if !found.value.is_empty() || found.listed_at >= asked {
        return Ok(found);
    }
    cache.lookup(Some(asked), &fetch, |m| m.ids(name)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    /// A fake service: the names it holds and how often it was listed.
    #[derive(Default)]
    struct Service {
        names: std::sync::Mutex<Vec<(String, String)>>,
        lists: AtomicUsize,
    }

    impl Service {
        fn add(&self, name: &str, id: &str) {
            if let Ok(mut n) = self.names.lock() {
                n.push((name.into(), id.into()));
            }
        }

        async fn list(&self) -> Result<ByName> {
            self.lists.fetch_add(1, Ordering::SeqCst);
            let mut out = ByName::default();
            for (name, id) in self.names.lock().map(|n| n.clone()).unwrap_or_default() {
                out.insert(name, id);
            }
            Ok(out)
        }

        fn lists(&self) -> usize {
            self.lists.load(Ordering::SeqCst)
        }
    }

    #[test]
    fn secret_names_from_names_and_arns() {
        for (id, want) in [
            ("mcp/credentials", "mcp/credentials"),
            (
                "arn:aws:secretsmanager:us-east-1:123456789012:secret:mcp/credentials-AbCdEf",
                "mcp/credentials",
            ),
            (
                "arn:aws:secretsmanager:us-east-1:123456789012:secret:x",
                "x",
            ),
        ] {
            assert_eq!(secret_name(id), want, "{id}");
        }
    }

    #[test]
    fn a_write_marks_a_key_against_listings_begun_before_it() {
        let written = Written::default();
        let before = Instant::now();
        written.mark("s");
        assert!(written.since("s", before));
        assert!(!written.since("other", before));
        let after = Instant::now();
        assert!(!written.since("s", after + Duration::from_millis(1)));
        // A listing begun within the settle window after the write may not show it yet.
        let settling = Written::settling(Duration::from_secs(300));
        let t0 = Instant::now();
        settling.mark("s");
        assert!(settling.since("s", t0 + Duration::from_secs(299)));
        assert!(!settling.since("s", t0 + Duration::from_secs(301)));
    }

    #[tokio::test]
    async fn one_listing_serves_every_lookup_until_it_ages() {
        let svc = Service::default();
        svc.add("a", "1");
        svc.add("b", "2");
        let cache = ListCache::<ByName>::new(Duration::from_secs(3600));
        for (name, want) in [("a", vec!["1"]), ("b", vec!["2"]), ("a", vec!["1"])] {
            let got = ids_named(&cache, name, || svc.list())
                .await
                .map(|f| f.value);
            assert_eq!(got.ok(), Some(want.iter().map(|s| s.to_string()).collect()));
        }
        assert_eq!(svc.lists(), 1, "one listing for three present names");
        // A listing older than its maximum age is taken again.
        let aged = ListCache::<ByName>::new(Duration::ZERO);
        for expected in 1..=3 {
            let _ = ids_named(&aged, "a", || svc.list()).await;
            assert_eq!(svc.lists(), 1 + expected);
        }
    }

    /// A name the cached listing lacks may have been created since: absence is only ever
    /// reported from a listing begun after the question.
    #[tokio::test]
    async fn absence_is_confirmed_by_a_listing_begun_after_the_question() {
        let svc = Service::default();
        let cache = ListCache::<ByName>::new(Duration::from_secs(3600));
        let first = ids_named(&cache, "a", || svc.list()).await.map(|f| f.value);
        assert_eq!(first.ok(), Some(vec![]));
        assert_eq!(svc.lists(), 1, "a fresh listing answers at once");
        // Created behind the cache's back (a create whose answer was lost, another
        // controller) while the listing is still young.
        svc.add("a", "1");
        let again = ids_named(&cache, "a", || svc.list()).await.map(|f| f.value);
        assert_eq!(again.ok(), Some(vec!["1".to_string()]));
        assert_eq!(svc.lists(), 2);
        // Present names do not need the confirmation.
        let _ = ids_named(&cache, "a", || svc.list()).await;
        assert_eq!(svc.lists(), 2);
    }

    #[tokio::test]
    async fn writes_edit_or_invalidate_the_listing() {
        let svc = Service::default();
        let cache = ListCache::<ByName>::new(Duration::from_secs(3600));
        let _ = ids_named(&cache, "x", || svc.list()).await;
        // A create whose answer arrived: the listing learns the ID without a fetch.
        svc.add("a", "1");
        cache.edit(|m| m.insert("a", "1")).await;
        let got = ids_named(&cache, "a", || svc.list()).await.map(|f| f.value);
        assert_eq!(got.ok(), Some(vec!["1".to_string()]));
        assert_eq!(svc.lists(), 1);
        // A write with an unknown outcome: the next lookup lists again.
        cache.invalidate();
        let _ = ids_named(&cache, "a", || svc.list()).await;
        assert_eq!(svc.lists(), 2);
        cache.edit(|m| m.remove("a", "1")).await;
        let gone = cache.lookup(None, || svc.list(), |m| m.ids("a")).await;
        assert_eq!(gone.map(|f| f.value).ok(), Some(vec![]));
    }

    /// An invalidation is never lost: not to a write that lands while a fetch runs, nor
    /// to a fetch abandoned half-way (its reconcile cancelled).
    #[tokio::test]
    async fn invalidations_outlive_concurrent_and_abandoned_fetches() {
        let svc = Service::default();
        let cache = ListCache::<ByName>::new(Duration::from_secs(3600));
        // A write lands while the fetch runs: the listing answers its own caller, and the
        // next lookup fetches again.
        let during = cache
            .lookup(
                None,
                || async {
                    cache.invalidate();
                    svc.list().await
                },
                |m| m.ids("a"),
            )
            .await;
        assert!(during.is_ok());
        let _ = cache.lookup(None, || svc.list(), |m| m.ids("a")).await;
        assert_eq!(svc.lists(), 2, "fetched again after the write");
        // Invalidated, then a fetch abandoned before it answers.
        cache.invalidate();
        let abandoned = tokio::time::timeout(
            Duration::from_millis(1),
            cache.lookup(None, std::future::pending, |m| m.ids("a")),
        )
        .await;
        assert!(abandoned.is_err(), "the fetch never answers");
        let _ = cache.lookup(None, || svc.list(), |m| m.ids("a")).await;
        assert_eq!(svc.lists(), 3, "the invalidation still holds");
        let _ = cache.lookup(None, || svc.list(), |m| m.ids("a")).await;
        assert_eq!(svc.lists(), 3, "and the new listing serves");
    }

    #[tokio::test]
    async fn a_failed_fetch_is_not_cached() {
        let svc = Service::default();
        let cache = ListCache::<ByName>::new(Duration::from_secs(3600));
        let failed = cache
            .lookup(
                None,
                || async {
                    Err::<ByName, _>(crate::error::ReconcileError::recoverable(
                        crate::reason::Reason::Aws("Boom".into()),
                        "lost",
                    ))
                },
                |m| m.ids("a"),
            )
            .await;
        assert!(failed.is_err());
        let _ = ids_named(&cache, "a", || svc.list()).await;
        assert_eq!(svc.lists(), 1, "the next lookup fetches");
    }

    /// Lookups that arrive while a fetch runs wait for it instead of fetching too.
    #[tokio::test(flavor = "multi_thread")]
    async fn concurrent_lookups_share_one_fetch() {
        let svc = Arc::new(Service::default());
        svc.add("a", "1");
        let cache = Arc::new(ListCache::<ByName>::new(Duration::from_secs(3600)));
        let slow = |svc: Arc<Service>| async move {
            tokio::task::yield_now().await;
            svc.list().await
        };
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (svc, cache) = (svc.clone(), cache.clone());
            tasks.push(tokio::spawn(async move {
                ids_named(&cache, "a", || slow(svc.clone()))
                    .await
                    .map(|f| f.value)
            }));
        }
        for t in tasks {
            let got = t.await.ok().and_then(|r| r.ok());
            assert_eq!(got, Some(vec!["1".to_string()]));
        }
        assert_eq!(svc.lists(), 1);
    }
}
