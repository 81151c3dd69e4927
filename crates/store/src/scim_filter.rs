//! A SCIM filter ([`ScimFilter`]) as SQL conditions with bound values, over
//! `users` and, through subqueries, `scim_identities`. The reference
//! semantics are [`ScimFilter::matches`]; the storage contracts compare
//! the two on every database. Text that compares in any letter case is
//! lowered on both sides (SQLite's `LOWER` folds ASCII letters only);
//! `co`, `sw` and `ew` are `LIKE` patterns with `%`, `_` and the escape
//! character escaped.

use sea_orm::sea_query::{Expr, ExprTrait, Func, LikeExpr, Query, SimpleExpr};
use sea_orm::{ColumnTrait, DbBackend};
use secureai_domain::provisioning::filter::{Attribute, Op, ScimFilter, Value};

use crate::convert::micros;
use crate::entities::{scim_identities, users};

const ESCAPE: char = '!';

fn never() -> SimpleExpr {
    Expr::cust("1 = 0")
}

fn always() -> SimpleExpr {
    Expr::cust("1 = 1")
}

fn pattern(value: &str, op: Op) -> String {
    let escaped: String = value
        .chars()
        .flat_map(|c| match c {
            '!' | '%' | '_' => vec![ESCAPE, c],
            c => vec![c],
        })
        .collect();
    match op {
        Op::Co => format!("%{escaped}%"),
        Op::Sw => format!("{escaped}%"),
        _ => format!("%{escaped}"),
    }
}

/// `column op value` for text.
fn text(column: SimpleExpr, op: Op, value: &str) -> SimpleExpr {
    match op {
        Op::Eq => column.eq(value),
        Op::Ne => column.ne(value),
        Op::Co | Op::Sw | Op::Ew => column.like(LikeExpr::new(pattern(value, op)).escape(ESCAPE)),
        _ => never(),
    }
}

fn users_col(column: users::Column) -> SimpleExpr {
    Expr::col((users::Entity, column))
}

fn lower(column: SimpleExpr) -> SimpleExpr {
    Func::lower(column).into()
}

/// Users whose identity row satisfies `condition`.
fn with_identity(condition: SimpleExpr) -> SimpleExpr {
    users::Column::Id.in_subquery(
        Query::select()
            .column(scim_identities::Column::UserId)
            .from(scim_identities::Entity)
            .and_where(condition)
            .to_owned(),
    )
}

fn identity_col(column: scim_identities::Column) -> SimpleExpr {
    Expr::col((scim_identities::Entity, column))
}

/// The condition for `filter` on this database.
pub(crate) fn condition(filter: &ScimFilter, backend: DbBackend) -> SimpleExpr {
    match filter {
        ScimFilter::Not(inner) => condition(inner, backend).not(),
        ScimFilter::And(a, b) => condition(a, backend).and(condition(b, backend)),
        ScimFilter::Or(a, b) => condition(a, backend).or(condition(b, backend)),
        ScimFilter::Present(Attribute::ExternalId) => {
            with_identity(identity_col(scim_identities::Column::ExternalId).is_not_null())
        }
        ScimFilter::Present(Attribute::Department) => {
            users_col(users::Column::Department).is_not_null()
        }
        ScimFilter::Present(_) => always(),
        ScimFilter::Compare(attribute, op, value) => compare(*attribute, *op, value, backend),
    }
}

fn compare(attribute: Attribute, op: Op, value: &Value, backend: DbBackend) -> SimpleExpr {
    match (attribute, value) {
        (Attribute::Active, Value::Bool(active)) => {
            let deactivated = users_col(users::Column::Status).eq("deactivated");
            match (op, *active) {
                (Op::Eq, false) | (Op::Ne, true) => deactivated,
                (Op::Eq, true) | (Op::Ne, false) => deactivated.not(),
                _ => never(),
            }
        }
        (Attribute::Created | Attribute::Modified, Value::Time(at)) => {
            let column = users_col(if attribute == Attribute::Created {
                users::Column::CreatedAt
            } else {
                users::Column::ModifiedAt
            });
            let at = micros(*at);
            match op {
                Op::Eq => column.eq(at),
                Op::Ne => column.ne(at),
                Op::Gt => column.gt(at),
                Op::Ge => column.gte(at),
                Op::Lt => column.lt(at),
                Op::Le => column.lte(at),
                _ => never(),
            }
        }
        (_, Value::Text(wanted)) => {
            let folded = wanted.to_lowercase();
            match attribute {
                Attribute::Id => text(users_col(users::Column::Id), op, wanted),
                Attribute::Email => text(users_col(users::Column::EmailKey), op, &folded),
                Attribute::Name => text(lower(users_col(users::Column::Name)), op, &folded),
                Attribute::Department => users_col(users::Column::Department)
                    .is_not_null()
                    .and(text(lower(users_col(users::Column::Department)), op, &folded)),
                Attribute::UserName => {
                    let key = identity_col(scim_identities::Column::UserNameKey);
                    let named = with_identity(key.clone().is_not_null().and(text(
                        key.clone(),
                        op,
                        &folded,
                    )));
                    let unnamed = with_identity(key.is_not_null()).not().and(text(
                        users_col(users::Column::EmailKey),
                        op,
                        &folded,
                    ));
                    named.or(unnamed)
                }
                Attribute::ExternalId => {
                    let column = identity_col(scim_identities::Column::ExternalId);
                    let exact = if backend == DbBackend::MySql {
                        // MariaDB compares in its collation's case: bytes instead.
                        let sql = if op == Op::Ne {
                            "CAST(external_id AS BINARY) <> CAST(? AS BINARY)"
                        } else {
                            "CAST(external_id AS BINARY) = CAST(? AS BINARY)"
                        };
                        Expr::cust_with_values(sql, [wanted.clone()])
                    } else {
                        text(column.clone(), op, wanted)
                    };
                    with_identity(column.is_not_null().and(exact))
                }
                Attribute::Active | Attribute::Created | Attribute::Modified => never(),
            }
        }
        _ => never(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_escape_what_like_would_read() {
        assert_eq!(pattern("50%_off!", Op::Co), "%50!%!_off!!%");
        assert_eq!(pattern("ada", Op::Sw), "ada%");
        assert_eq!(pattern("@example.com", Op::Ew), "%@example.com");
    }
}
