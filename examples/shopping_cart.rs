//! Shopping carts as aggregates behind 4 writer-actor shards, driven by many
//! concurrent clients; a read model of cart totals (a view) and an async
//! projection counting checkouts. Prints throughput and checks that the
//! read model, the projection and what the clients did all agree.
//!
//! Run: `cargo run --release --example shopping_cart [-- CLIENTS CARTS_PER_CLIENT]`
//! Its given/when/then tests run with `cargo test`.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rwlog::{Aggregate, CommandError, Event, Recorded, Runtime, View};

#[derive(Clone, Debug, PartialEq)]
pub enum CartEvent {
    ItemAdded { sku: String, price: u64, qty: u32 },
    ItemRemoved { sku: String },
    CheckedOut { total: u64 },
}

impl Event for CartEvent {
    fn event_type(&self) -> &'static str {
        match self {
            CartEvent::ItemAdded { .. } => "ItemAdded",
            CartEvent::ItemRemoved { .. } => "ItemRemoved",
            CartEvent::CheckedOut { .. } => "CheckedOut",
        }
    }
}

#[derive(Debug)]
pub enum CartCommand {
    AddItem { sku: String, price: u64, qty: u32 },
    RemoveItem { sku: String },
    Checkout,
}

#[derive(Debug, PartialEq)]
pub enum CartError {
    AlreadyCheckedOut,
    Empty,
    NotInCart(String),
    ZeroQuantity,
}

impl fmt::Display for CartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CartError::AlreadyCheckedOut => f.write_str("the cart is checked out"),
            CartError::Empty => f.write_str("the cart is empty"),
            CartError::NotInCart(sku) => write!(f, "{sku} is not in the cart"),
            CartError::ZeroQuantity => f.write_str("a quantity must be at least 1"),
        }
    }
}

/// One cart: its lines (sku -> price, quantity) and whether it is closed.
#[derive(Default, Debug)]
pub struct Cart {
    lines: BTreeMap<String, (u64, u32)>,
    checked_out: bool,
}

impl Cart {
    fn total(&self) -> u64 {
        self.lines
            .values()
            .map(|(price, qty)| price * *qty as u64)
            .sum()
    }
}

impl Aggregate for Cart {
    type Command = CartCommand;
    type Event = CartEvent;
    type Error = CartError;

    fn handle(&self, command: &CartCommand) -> Result<Vec<CartEvent>, CartError> {
        if self.checked_out {
            return Err(CartError::AlreadyCheckedOut);
        }
        match command {
            CartCommand::AddItem { qty: 0, .. } => Err(CartError::ZeroQuantity),
            CartCommand::AddItem { sku, price, qty } => Ok(vec![CartEvent::ItemAdded {
                sku: sku.clone(),
                price: *price,
                qty: *qty,
            }]),
            CartCommand::RemoveItem { sku } if !self.lines.contains_key(sku) => {
                Err(CartError::NotInCart(sku.clone()))
            }
            CartCommand::RemoveItem { sku } => {
                Ok(vec![CartEvent::ItemRemoved { sku: sku.clone() }])
            }
            CartCommand::Checkout if self.lines.is_empty() => Err(CartError::Empty),
            CartCommand::Checkout => Ok(vec![CartEvent::CheckedOut {
                total: self.total(),
            }]),
        }
    }

    fn apply(&mut self, event: &CartEvent) {
        match event {
            CartEvent::ItemAdded { sku, price, qty } => {
                let line = self.lines.entry(sku.clone()).or_insert((*price, 0));
                line.1 += qty;
            }
            CartEvent::ItemRemoved { sku } => {
                self.lines.remove(sku);
            }
            CartEvent::CheckedOut { .. } => self.checked_out = true,
        }
    }
}

/// The read model: each cart's current total, folded from the events.
#[derive(Clone, Default)]
struct CartTotals(HashMap<String, CartLines>);

/// A cart as the read model sees it.
#[derive(Clone, Default)]
struct CartLines {
    lines: BTreeMap<String, u64>,
    checked_out: bool,
}

impl View<CartEvent> for CartTotals {
    fn apply(&mut self, e: &Recorded<CartEvent>) {
        let cart = self.0.entry(e.stream().to_string()).or_default();
        match e.payload() {
            CartEvent::ItemAdded { sku, price, qty } => {
                *cart.lines.entry(sku.clone()).or_default() += price * *qty as u64
            }
            CartEvent::ItemRemoved { sku } => {
                cart.lines.remove(sku);
            }
            CartEvent::CheckedOut { .. } => cart.checked_out = true,
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let clients: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(64);
    let carts_per_client: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(50);

    let rt = Arc::new(
        Runtime::<CartEvent>::builder()
            .view("totals", CartTotals::default())
            .build()?,
    );
    let checkouts = Arc::new(AtomicU64::new(0));
    let revenue = Arc::new(AtomicU64::new(0));
    let projection = {
        let (checkouts, revenue) = (Arc::clone(&checkouts), Arc::clone(&revenue));
        rt.projection(
            "checkouts",
            move |e: &Recorded<CartEvent>| -> Result<(), rwlog::ProjectionError> {
                if let CartEvent::CheckedOut { total } = e.payload() {
                    checkouts.fetch_add(1, Ordering::Relaxed);
                    revenue.fetch_add(*total, Ordering::Relaxed);
                }
                Ok(())
            },
        )?
    };

    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()?;
    let actors = {
        let _guard = tokio.enter();
        rt.actors::<Cart>(4)?
    };
    let started = Instant::now();
    let results = tokio.block_on(async {
        let tasks: Vec<_> = (0..clients)
            .map(|c| {
                let actors = actors.clone();
                tokio::spawn(async move {
                    let (mut commands, mut refused, mut spent) = (0u64, 0u64, 0u64);
                    for k in 0..carts_per_client {
                        let cart = format!("cart-{c}-{k}");
                        let mut expected = 0;
                        for i in 0..4u64 {
                            let (price, qty) =
                                (100 + (c * 7 + k * 3 + i) % 900, 1 + (i % 3) as u32);
                            let add = CartCommand::AddItem {
                                sku: format!("sku-{i}"),
                                price,
                                qty,
                            };
                            actors.send(cart.as_str(), add).await.expect("add");
                            expected += price * qty as u64;
                            commands += 1;
                        }
                        if k % 3 == 0 {
                            let remove = CartCommand::RemoveItem {
                                sku: "sku-0".into(),
                            };
                            actors.send(cart.as_str(), remove).await.expect("remove");
                            expected -= 100 + (c * 7 + k * 3) % 900; // sku-0: quantity 1
                            commands += 1;
                        }
                        actors
                            .send(cart.as_str(), CartCommand::Checkout)
                            .await
                            .expect("checkout");
                        commands += 1;
                        // A second checkout is refused and appends nothing.
                        match actors.send(cart.as_str(), CartCommand::Checkout).await {
                            Err(CommandError::Domain(CartError::AlreadyCheckedOut)) => refused += 1,
                            other => panic!("a second checkout was not refused: {other:?}"),
                        }
                        commands += 1;
                        spent += expected;
                    }
                    (commands, refused, spent)
                })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.expect("client task"));
        }
        out
    });
    let elapsed = started.elapsed().as_secs_f64();
    let commands: u64 = results.iter().map(|r| r.0).sum();
    let refused: u64 = results.iter().map(|r| r.1).sum();
    let spent: u64 = results.iter().map(|r| r.2).sum();
    let carts = clients * carts_per_client;

    projection.wait_for(rt.head(), Duration::from_secs(60))?;
    let totals = rt.reader::<CartTotals>("totals")?.strong()?;
    let read_model: u64 = totals
        .0
        .values()
        .map(|c| c.lines.values().sum::<u64>())
        .sum();
    let closed = totals.0.values().filter(|c| c.checked_out).count() as u64;
    println!("{clients} clients, {carts} carts, 4 actor shards");
    println!(
        "{commands} commands in {elapsed:.2} s: {:.0} commands/s ({refused} refused as expected), {} events",
        commands as f64 / elapsed,
        rt.head()
    );
    println!(
        "read model: {} carts, {closed} checked out, total {read_model}; projection: {} checkouts, revenue {}",
        totals.0.len(),
        checkouts.load(Ordering::Relaxed),
        revenue.load(Ordering::Relaxed)
    );
    let ok = read_model == spent
        && closed == carts
        && checkouts.load(Ordering::Relaxed) == carts
        && revenue.load(Ordering::Relaxed) == spent;
    if !ok {
        eprintln!("MISMATCH: clients spent {spent}");
        std::process::exit(1);
    }
    println!("totals check: the clients, the read model and the projection agree ({spent})");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rwlog::testing::AggregateTest;

    fn added(sku: &str, price: u64, qty: u32) -> CartEvent {
        CartEvent::ItemAdded {
            sku: sku.into(),
            price,
            qty,
        }
    }

    #[test]
    fn adding_an_item_records_it() {
        AggregateTest::<Cart>::given_no_events()
            .when(CartCommand::AddItem {
                sku: "tea".into(),
                price: 300,
                qty: 2,
            })
            .then_expect_events([added("tea", 300, 2)]);
    }

    #[test]
    fn checkout_totals_the_remaining_lines() {
        AggregateTest::<Cart>::given([
            added("tea", 300, 2),
            added("cup", 500, 1),
            CartEvent::ItemRemoved { sku: "cup".into() },
        ])
        .when(CartCommand::Checkout)
        .then_expect_events([CartEvent::CheckedOut { total: 600 }]);
    }

    #[test]
    fn rules_refuse_bad_commands() {
        AggregateTest::<Cart>::given_no_events()
            .when(CartCommand::Checkout)
            .then_expect_error(CartError::Empty);
        AggregateTest::<Cart>::given([added("tea", 300, 1)])
            .when(CartCommand::RemoveItem { sku: "cup".into() })
            .then_expect_error(CartError::NotInCart("cup".into()));
        AggregateTest::<Cart>::given([added("tea", 300, 1), CartEvent::CheckedOut { total: 300 }])
            .when(CartCommand::AddItem {
                sku: "cup".into(),
                price: 1,
                qty: 1,
            })
            .then_expect_error(CartError::AlreadyCheckedOut);
        AggregateTest::<Cart>::given_no_events()
            .when(CartCommand::AddItem {
                sku: "cup".into(),
                price: 1,
                qty: 0,
            })
            .then_expect_error(CartError::ZeroQuantity);
    }
}
