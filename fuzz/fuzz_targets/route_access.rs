//! Route access: for any method, path spelling and token, a route's handler runs only when the
//! token is a key with the scope that route asks for. The app is the service's own route table and 404
//! answer, with each handler replaced by a probe that names its route, so the property is
//! checked on exactly what the router routes (percent-encodings, doubled and trailing slashes,
//! dot segments and whatever else the fuzzer finds).
#![no_main]

use actix_web::http::{header, Method, StatusCode, Uri};
use actix_web::{test, web, App, HttpResponse};
use isolate_service::api::auth::Auth;
use isolate_service::api::routes::{self, Access, Scope};
use isolate_service::config::AuthConfig;
use libfuzzer_sys::fuzz_target;

const USER: &str = "user-token-0123456789";
const ADMIN: &str = "admin-token-0123456789";

fuzz_target!(|data: &[u8]| {
    let [m, t, path @ ..] = data else {
        return;
    };
    let Ok(path) = std::str::from_utf8(path) else {
        return;
    };
    if !path.starts_with('/') || Uri::try_from(path).is_err() {
        return;
    }
    let method = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::HEAD,
    ][usize::from(*m) % 5]
        .clone();
    let token = [None, Some(USER), Some(ADMIN), Some("wrong")][usize::from(*t) % 4];
    let admin_set = t & 4 == 0;
    actix_web::rt::System::new().block_on(async move {
        let auth = Auth::new(&AuthConfig {
            token: Some(USER.into()),
            admin_token: admin_set.then(|| ADMIN.into()),
            rate_limit_per_minute: 0,
            keys: Vec::new(),
        });
        let app = test::init_service(
            App::new()
                .app_data(web::Data::new(auth))
                .configure(|cfg| {
                    routes::register_with(cfg, |spec| {
                        web::route().to(move || async move {
                            HttpResponse::Ok()
                                .insert_header(("x-route", spec.path))
                                .finish()
                        })
                    })
                })
                .default_service(actix_web::dev::fn_service(routes::not_found)),
        )
        .await;
        let mut req = test::TestRequest::default()
            .method(method.clone())
            .uri(path);
        if let Some(token) = token {
            req = req.insert_header((header::AUTHORIZATION, format!("Bearer {token}")));
        }
        let res = test::call_service(&app, req.to_request()).await;
        let Some(route) = res.headers().get("x-route") else {
            // No handler ran: the answer is a refusal or a 404/405, never a success.
            assert!(
                !res.status().is_success(),
                "{method} {path} answered {} without a handler",
                res.status()
            );
            return;
        };
        let route = route.to_str().expect("route names are ASCII");
        let spec = routes::ROUTES
            .iter()
            .find(|r| r.path == route)
            .expect("the probe names a route");
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(spec.method, method, "{method} {path} reached {route}");
        // `default` (USER) has every scope but admin when the admin key (ADMIN) is set, and
        // every scope when it is not; the admin key has only the admin scope.
        let user = token == Some(USER);
        let admin = admin_set && token == Some(ADMIN);
        let allowed = match spec.access {
            Access::Public => true,
            Access::Any => user || admin,
            Access::Scope(Scope::Admin) => admin || (!admin_set && user),
            Access::Scope(_) => user,
        };
        assert!(
            allowed,
            "{method} {path} with {token:?} reached {route} ({:?})",
            spec.access
        );
    });
});
