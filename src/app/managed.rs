//! Cameras managed from the dashboard, on the run loop's side. At start and at each reload
//! the index's cameras (`store/managed.rs`) join the file's, each checked by the file's
//! rules (one that no longer fits, say an id the file now uses too, is left out and
//! logged). A change from the dashboard (`web/cameras_admin.rs`) is checked against every
//! other camera, kept in the index with its password sealed, and applied through the
//! per-camera reload: that camera alone restarts, the others keep streaming and keep
//! their pre-roll. The file itself is never written.

use super::cameras::Cameras;
use super::services::Services;
use crate::config::secret::Secret;
use crate::config::{Camera, Config};
use crate::store::{ManagedCamera, Store};
use crate::web::cameras_admin::{CameraChange, ChangeRequest, PasswordEdit, Refusal};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// `config` with the index's cameras after the file's own.
pub fn merge(config: Config, store: &Store) -> Config {
    let kept = match store.managed_cameras() {
        Ok(kept) => kept,
        Err(e) => {
            tracing::error!("dashboard cameras cannot be read, running without them: {e}");
            return config;
        }
    };
    let mut accepted: Vec<Camera> = Vec::new();
    let mut merged = config;
    for m in kept {
        let camera = match to_camera(&m) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(camera = %m.id, "dashboard camera left out: {e}");
                continue;
            }
        };
        let candidate = accepted.iter().cloned().chain([camera.clone()]);
        match merged.with_managed(candidate) {
            Ok(next) => {
                merged = next;
                accepted.push(camera);
            }
            Err(problems) => tracing::error!(
                camera = %m.id,
                "dashboard camera left out: {}",
                words(&problems)
            ),
        }
    }
    let merged = with_drawn_areas(merged, store);
    for cam in merged.cameras.iter().filter(|c| c.managed) {
        if let Err(e) = store.ensure_camera(&cam.id, &cam.name) {
            tracing::error!(camera = %cam.id, "{e}");
        }
    }
    merged
}

/// The zones and masks drawn in the dashboard over the file's cameras' own (a dashboard
/// camera keeps them in its entry). Ones that no longer pass the checks are left out.
fn with_drawn_areas(config: Config, store: &Store) -> Config {
    let drawn = match store.camera_areas() {
        Ok(drawn) => drawn,
        Err(e) => {
            tracing::error!("drawn zones cannot be read, using the file's: {e}");
            return config;
        }
    };
    let mut merged = config;
    for (id, zones, masks) in drawn {
        let Some(i) = merged.cameras.iter().position(|c| c.id == id && !c.managed) else {
            continue;
        };
        let mut next = merged.clone();
        let parsed =
            serde_json::from_str(&zones).and_then(|z| Ok((z, serde_json::from_str(&masks)?)));
        match parsed {
            Ok((z, m)) => (next.cameras[i].zones, next.cameras[i].masks) = (z, m),
            Err(e) => {
                tracing::error!(camera = %id, "drawn zones left out: {e}");
                continue;
            }
        }
        match next.problems().as_slice() {
            [] => merged = next,
            problems => {
                tracing::error!(camera = %id, "drawn zones left out: {}", words(problems))
            }
        }
    }
    merged
}

fn to_camera(m: &ManagedCamera) -> Result<Camera, String> {
    let mut camera: Camera = serde_json::from_str(&m.spec_json)
        .map_err(|e| format!("its entry in the index does not parse: {e}"))?;
    camera.password = m.password.as_ref().map(|p| Secret::Inline(p.to_string()));
    Ok(camera)
}

fn words(problems: &[(String, String)]) -> String {
    problems
        .iter()
        .map(|(k, m)| format!("{k}: {m}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Applies one change from the dashboard and answers it.
pub async fn apply(
    request: ChangeRequest,
    config: &mut Config,
    services: &Services,
    cameras: &mut Cameras,
    shutdown: &CancellationToken,
    deadline: Duration,
) {
    let outcome = change(
        request.change,
        config,
        services,
        cameras,
        shutdown,
        deadline,
    )
    .await;
    // The dashboard may have given up waiting; the change stands either way.
    let _ = request.reply.send(outcome);
}

async fn change(
    change: CameraChange,
    config: &mut Config,
    services: &Services,
    cameras: &mut Cameras,
    shutdown: &CancellationToken,
    deadline: Duration,
) -> Result<String, Refusal> {
    let (next, id, said, areas_only) = match change {
        CameraChange::Areas { id, zones, masks } => {
            let next = with_areas(config, &id, zones, masks)?;
            let said = format!("zones and masks of camera {id} saved and applied");
            (next, id, said, true)
        }
        change => {
            let (managed, id, said) = next_managed(change, config)?;
            let next = config.with_managed(managed.clone()).map_err(|problems| {
                let index = next_index(config, &managed, &id);
                Refusal::Invalid(entry_keys(problems, index))
            })?;
            (next, id, said, false)
        }
    };
    // Applied first, kept second: a camera that cannot start is not kept either.
    let touched = cameras
        .apply(&next, services, shutdown, deadline)
        .await
        .map_err(|e| Refusal::Failed(format!("{e:#}")))?;
    match areas_only {
        true => persist_areas(&services.store, &next, &id).await?,
        false => {
            let entry = next.cameras.iter().find(|c| c.id == id && c.managed);
            persist(&services.store, &id, entry).await?
        }
    }
    *services
        .desk
        .list
        .write()
        .unwrap_or_else(|p| p.into_inner()) = crate::web::camera_infos(&next, &services.store);
    *config = next;
    tracing::info!(camera = %id, "dashboard: {said}; restarted: {}", touched.join(", "));
    Ok(said)
}

/// The dashboard's cameras after `change`, the camera's id, and what to tell the user.
fn next_managed(
    change: CameraChange,
    config: &Config,
) -> Result<(Vec<Camera>, String, String), Refusal> {
    let mut managed: Vec<Camera> = config
        .cameras
        .iter()
        .filter(|c| c.managed)
        .cloned()
        .collect();
    let existing = |id: &str| config.cameras.iter().find(|c| c.id == id);
    let from_file = |id: &str| {
        Refusal::Conflict(format!(
            "camera {id:?} comes from surveillance.yml; change it there (the dashboard never rewrites that file)"
        ))
    };
    match change {
        CameraChange::Add { camera, password } => {
            let id = camera.id.clone();
            match existing(&id) {
                Some(c) if !c.managed => return Err(from_file(&id)),
                Some(_) => return Err(Refusal::Conflict(format!("a camera {id:?} exists"))),
                None => {}
            }
            managed.push(with_password(*camera, password, None));
            Ok((managed, id.clone(), format!("camera {id} added")))
        }
        CameraChange::Edit { camera, password } => {
            let id = camera.id.clone();
            let old = match existing(&id) {
                None => return Err(Refusal::NotFound(format!("no camera {id:?}"))),
                Some(c) if !c.managed => return Err(from_file(&id)),
                Some(c) => c.password.clone(),
            };
            let slot = managed.iter_mut().find(|c| c.id == id);
            if let Some(slot) = slot {
                *slot = with_password(*camera, password, old);
            }
            Ok((managed, id.clone(), format!("camera {id} changed")))
        }
        CameraChange::Areas { id, .. } => Err(Refusal::Failed(format!(
            "zones of {id} are not an entry change"
        ))),
        CameraChange::Remove { id } => {
            match existing(&id) {
                None => return Err(Refusal::NotFound(format!("no camera {id:?}"))),
                Some(c) if !c.managed => return Err(from_file(&id)),
                Some(_) => managed.retain(|c| c.id != id),
            }
            let said = format!(
                "camera {id} removed; its recordings stay until retention deletes them, as any camera's do"
            );
            Ok((managed, id, said))
        }
    }
}

fn with_password(mut camera: Camera, edit: PasswordEdit, old: Option<Secret>) -> Camera {
    camera.password = match edit {
        PasswordEdit::Keep => old,
        PasswordEdit::Clear => None,
        PasswordEdit::Set(p) => Some(Secret::Inline(p.to_string())),
    };
    camera
}

/// `config` with camera `id`'s zones and masks replaced, checked.
fn with_areas(
    config: &Config,
    id: &str,
    zones: Vec<crate::config::Area>,
    masks: Vec<crate::config::Area>,
) -> Result<Config, Refusal> {
    let mut next = config.clone();
    let Some(i) = next.cameras.iter().position(|c| c.id == id) else {
        return Err(Refusal::NotFound(format!("no camera {id:?}")));
    };
    (next.cameras[i].zones, next.cameras[i].masks) = (zones, masks);
    match next.problems() {
        problems if problems.is_empty() => Ok(next),
        problems => Err(Refusal::Invalid(entry_keys(problems, Some(i)))),
    }
}

/// Keeps camera `id`'s zones and masks: in a dashboard camera's entry, or beside a file
/// camera (`camera_areas`).
async fn persist_areas(store: &Store, next: &Config, id: &str) -> Result<(), Refusal> {
    let Some(cam) = next.cameras.iter().find(|c| c.id == id) else {
        return Err(Refusal::NotFound(format!("no camera {id:?}")));
    };
    if cam.managed {
        return persist(store, id, Some(cam)).await;
    }
    let json = |a: &Vec<crate::config::Area>| {
        serde_json::to_string(a).map_err(|e| Refusal::Failed(e.to_string()))
    };
    let (zones, masks) = (json(&cam.zones)?, json(&cam.masks)?);
    let (store, id) = (store.clone(), id.to_string());
    let now_ms = crate::base::clock::wall_ms();
    tokio::task::spawn_blocking(move || store.put_camera_areas(&id, &zones, &masks, now_ms))
        .await
        .map_err(|e| Refusal::Failed(e.to_string()))?
        .map_err(|e| Refusal::Failed(e.to_string()))
}

/// Where camera `id` sits in the merged list (the file's cameras first).
fn next_index(config: &Config, managed: &[Camera], id: &str) -> Option<usize> {
    let file_cameras = config.cameras.iter().filter(|c| !c.managed).count();
    managed
        .iter()
        .position(|c| c.id == id)
        .map(|i| i + file_cameras)
}

/// Problems of the changed entry keyed inside it (`url`, not `cameras[3].url`).
fn entry_keys(problems: Vec<(String, String)>, index: Option<usize>) -> Vec<(String, String)> {
    let prefix = index.map(|i| format!("cameras[{i}]"));
    problems
        .into_iter()
        .map(|(key, message)| match &prefix {
            Some(p) if key == *p => (String::new(), message),
            Some(p) => match key.strip_prefix(&format!("{p}.")) {
                Some(inner) => (inner.to_string(), message),
                None => (key, message),
            },
            None => (key, message),
        })
        .collect()
}

/// Keeps camera `id`'s entry (its password sealed) or, with None, forgets it.
async fn persist(store: &Store, id: &str, entry: Option<&Camera>) -> Result<(), Refusal> {
    let store = store.clone();
    let id = id.to_string();
    let row = entry.map(|c| {
        let password = c.password.as_ref().and_then(|s| s.reveal().ok());
        let mut spec = c.clone();
        spec.password = None;
        (serde_json::to_string(&spec), password)
    });
    let now_ms = crate::base::clock::wall_ms();
    tokio::task::spawn_blocking(move || match row {
        Some((Ok(spec), password)) => {
            store.put_managed_camera(&id, &spec, password.as_deref(), now_ms)
        }
        Some((Err(e), _)) => Err(crate::store::StoreError::Invalid(e.to_string())),
        None => store.delete_managed_camera(&id).map(|_| ()),
    })
    .await
    .map_err(|e| Refusal::Failed(e.to_string()))?
    .map_err(|e| Refusal::Failed(e.to_string()))
}
