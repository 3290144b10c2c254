//go:build ignore

// gen writes common.txt, the list of common passwords that CheckPassword refuses. Nothing is downloaded:
// the seed lists below were written from general knowledge of what breach corpora and the yearly
// "worst passwords" lists keep finding (the famous top entries, first names, pets, sports, pop culture,
// keyboard walks, digit runs, years), and the list is their lowercased combinations with the suffixes
// people add to satisfy composition rules. Only entries CheckPassword could ever meet are kept: 8 to 64
// characters.
//
// Run from edge/pages with `go generate` (or `go run ./passwords/gen.go -o passwords/common.txt`).
package main

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
)

// top are the perennial leaders of leaked-password lists, in English and French.
var top = strings.Fields(`
password 123456 123456789 12345678 12345 qwerty abc123 football monkey letmein 111111 1234567 dragon
baseball sunshine iloveyou trustno1 princess adobe123 123123 welcome login admin master 666666 photoshop
qwertyuiop ashley mustang 121212 starwars 654321 bailey access flower 555555 passw0rd shadow lovely
7777777 michael jesus password1 superman hello charlie 888888 696969 qwerty123 hottie freedom aa123456
qazwsx ninja azerty loveme whatever donald batman zaq1zaq1 000000 123qwe killer jordan jennifer hunter
buster soccer harley robert thomas tigger ranger daniel hannah maggie jessica pepper computer cookie
summer winter spring autumn secret changeme default guest administrator root toor test tester testing
letmein1 welcome1 iloveu lovely1 babygirl sunshine1 princess1 chocolate butterfly anthony liverpool
chelsea arsenal manchester barcelona realmadrid juventus yankees cowboys steelers lakers dolphins
eagles patriots packers bulldogs tigers cheese internet samsung google facebook twitter linkedin
myspace yahoo hotmail gmail outlook apple iphone android windows microsoft linux ubuntu oracle
master1 matrix mercedes ferrari porsche corvette harley1 yamaha honda toyota nissan mustang1
motdepasse azertyuiop doudou loulou soleil chouchou marseille bonjour jetaime nicolas camille
bienvenue chocolat coucou amour doudou1 nounours titou papillon vacances football1 passer
contrasena contrasenia hallo passwort schatz sonne geheim
`)

// names are first names that keep appearing in password lists.
var names = strings.Fields(`
michael jennifer jessica ashley daniel matthew andrew joshua christopher david james john robert william
joseph charles thomas richard mark steven paul kevin brian jason justin brandon ryan eric adam anthony
nicholas jonathan benjamin samuel alexander patrick peter george edward henry jack oliver harry charlie
jacob ethan noah liam mason logan lucas aiden jayden tyler austin dylan zachary kyle nathan aaron sean
jordan taylor morgan madison hannah emily sarah samantha elizabeth lauren amanda melissa stephanie
nicole michelle heather amber rachel rebecca megan brittany danielle victoria natalie kimberly chelsea
courtney christina alexis sophia olivia isabella emma abigail chloe grace lily zoe mia ava ella
charlotte amelia evelyn harper scarlett natasha veronica monica angela andrea patricia barbara linda
susan karen nancy betty helen sandra donna carol ruth sharon laura cynthia kathleen amy shirley anna
maria marie julia diana sophie lucy alice ellie kate katie jenny jenna tiffany crystal erica vanessa
caroline catherine gabriel raphael louis arthur hugo jules leo adam mathis theo enzo maxime antoine
alexandre julien guillaume sebastien christophe frederic laurent olivier pierre philippe francois
jean jacques michel alain bernard stephane thierry vincent manon lea chloe ines jade louise juliette
clara lucie pauline mathilde marine margaux celine nathalie isabelle sandrine valerie sylvie
stephanie aurelie emilie caroline virginie carlos miguel jose juan luis antonio manuel francisco
javier alejandro pablo diego sergio fernando ricardo eduardo roberto marco giuseppe giovanni
francesco alessandro luca matteo andrea paolo stefano hans peter klaus stefan thomas andreas
markus tobias florian sebastian mohammed ahmed ali omar hassan fatima aisha yusuf ivan dmitri
sergei natasha olga svetlana tatiana anastasia vladimir alexei
`)

// words are common nouns, pets, hobbies, places and culture seen in passwords.
var words = strings.Fields(`
love angel baby money secret dragon monkey tiger lion bear wolf eagle falcon hawk shark cobra viper
snake horse pony bunny kitty kitten puppy doggy doggie dog cat fish bird bubbles fluffy smokey
shadow ginger pepper buddy max bella lucky rocky molly coco daisy sadie oreo snoopy garfield scooby
sparky spike bandit rusty duke toby chester milo oscar simba nala boomer diesel bruno zeus thor
loki odin athena apollo hercules spartan warrior soldier knight wizard merlin gandalf frodo hobbit
pokemon pikachu naruto sasuke goku vegeta dragonball onepiece minecraft fortnite roblox zelda mario
luigi sonic halo warcraft starcraft diablo legend legends gamer player hacker matrix neo morpheus
trinity batman superman spiderman ironman hulk captain marvel avengers joker harley harrypotter
hogwarts gryffindor slytherin starwars jedi yoda vader skywalker chewbacca stargate startrek
startrek1 enterprise galaxy planet universe cosmos rocket apollo11 nasa pilot flying airplane
football soccer baseball basketball hockey tennis golf rugby cricket volleyball boxing wrestling
karate ninja samurai skate skater surfer surfing snowboard hunting fishing camping hiking biking
music guitar piano drums singer dancer dance rock rockstar metal punk hiphop rapper jazz blues
disco party summer winter spring autumn sunny sunshine rainbow thunder lightning storm rain snow
ocean beach island paradise heaven hell devil angel1 god jesus christ faith hope grace blessed
church bible prayer trinity holy amen peace freedom liberty america usa canada mexico england
london paris france berlin germany italia espana spain brazil brasil argentina russia china japan
tokyo london1 newyork chicago boston dallas texas florida california vegas miami atlanta denver
seattle phoenix houston detroit toronto montreal quebec sydney melbourne dublin ireland scotland
cookie cookies candy sugar honey sweet sweetie sweetheart darling lover lovers loving lovely
beautiful pretty princess prince queen king kingdom royal diamond diamonds gold golden silver
crystal pearl ruby emerald sapphire jade money1 dollar dollars cash rich million billion boss
chief leader master mister lady gentleman friend friends family mother father mommy daddy mama
papa baby1 babygirl babyboy girl girls boy boys brother sister son daughter husband wife forever
always together never nothing something everything whatever hello welcome goodbye thanks please
computer laptop internet online network server system access admin login secret1 private
personal security secure password pass passwd pwd letmein open sesame opensesame trustno1 qwerty
orange apple banana cherry lemon lime mango peach strawberry blueberry chocolate vanilla coffee
pizza burger pasta cheese butter bacon chicken turkey potato tomato pumpkin popcorn icecream
red blue green yellow purple pink black white silver1 brown violet scarlet
car cars truck jeep bmw audi volvo ford chevy dodge camaro corvette mustang ferrari porsche
lamborghini bugatti mercedes toyota honda nissan subaru mazda harley yamaha suzuki kawasaki ducati
school college student teacher doctor nurse police fireman firefighter army navy marine marines
airforce military sniper killer hunter ranger sniper1 assassin ghost phantom shadow1 dark darkness
darkside night midnight moon moonlight star stars sun sunset sunrise sky skyline cloud clouds
flower flowers rose roses lily tulip daisy1 orchid garden forest tree trees nature earth fire
water ice iceman fireball firebird phoenix dragon1 unicorn mermaid fairy magic magician
welcome1 iloveyou iloveu loveyou lovelove loveme mylove myheart heart hearts kiss kisses hug hugs
smile happy happiness funny crazy cool awesome super superstar star1 hero heroes champion winner
victory success power energy strong strength fighter fight lucky1 lucky7 seven eleven
`)

// walks are keyboard rows and patterns (QWERTY, AZERTY, QWERTZ), read across, down and back.
var walks = strings.Fields(`
qwertyuiop asdfghjkl zxcvbnm azertyuiop qsdfghjklm wxcvbn qwertzuiop yxcvbnm 1234567890 0987654321
1qaz2wsx 1qazxsw2 zaq12wsx zaq1xsw2 1q2w3e4r 1q2w3e4r5t 1q2w3e4r5t6y q1w2e3r4 q1w2e3r4t5 qazwsx
qazwsxedc qazwsxedcrfv qweasdzxc qweasd zxcasdqwe 1qaz2wsx3edc 2wsx3edc 3edc4rfv qwe123 123qwe asd123
zxc123 qwerty123 qwerty1 qwer1234 1234qwer asdf1234 zxcv1234 qwerasdf asdfzxcv asdfqwer poiuytrewq
lkjhgfdsa mnbvcxz mnbvcxy 147258369 159753 159357 741852963 963852741 789456123 147852369 123654789
987654321 258456 852456 456852 159951 753951 951753 147963 369258 789123 321654 654123 qwaszx
qawsedrf qawsedrftg 1a2s3d4f azqswxdc wxcvbn123 azerty123 qwertz123 aqwzsx aqwxsz
`)

// suffixes are what people append to meet length and character-class rules.
var suffixes = []string{
	"", "1", "2", "7", "12", "13", "69", "99", "00", "01", "007", "11", "123", "1234", "12345", "123456",
	"!", "1!", "123!", "@123", "#1", "*",
}

func main() {
	out := flag.String("o", "common.txt", "output file")
	flag.Parse()
	set := map[string]bool{}
	add := func(s string) {
		s = strings.ToLower(s)
		if n := len([]rune(s)); n >= 8 && n <= 64 {
			set[s] = true
		}
	}

	bases := slices.Concat(top, names, words, walks)
	for _, b := range bases {
		for _, s := range suffixes {
			add(b + s)
		}
		for _, s := range []string{"1", "123", "@", "!"} {
			add(s + b)
		}
		add(b + b)
		add("my" + b)
		add("i" + "love" + b)
		add(b + "love")
		add("the" + b)
	}
	// Years after the top entries and names: four digits from 1980, two digits for the top entries.
	for _, b := range slices.Concat(top, names) {
		for y := 1985; y <= 2026; y++ {
			add(fmt.Sprintf("%s%d", b, y))
		}
	}
	for _, b := range top {
		for y := 1980; y <= 2026; y++ {
			add(fmt.Sprintf("%s%02d", b, y%100))
		}
	}
	// Leetspeak of the top entries and words, alone and with the commonest suffixes.
	leet := strings.NewReplacer("a", "@", "o", "0", "e", "3", "i", "1", "s", "$")
	leetDigits := strings.NewReplacer("a", "4", "o", "0", "e", "3", "i", "1", "s", "5")
	leetOnlyO := strings.NewReplacer("o", "0")
	leetOnlyA := strings.NewReplacer("a", "@")
	leetOnlyI := strings.NewReplacer("i", "1")
	leetOnlyE := strings.NewReplacer("e", "3")
	leetOnlyS := strings.NewReplacer("s", "$")
	for _, b := range slices.Concat(top, words) {
		for _, r := range []*strings.Replacer{leet, leetDigits, leetOnlyO, leetOnlyA, leetOnlyI, leetOnlyE, leetOnlyS} {
			v := r.Replace(b)
			for _, s := range []string{"", "1", "12", "123", "!", "1!", "123!"} {
				add(v + s)
			}
		}
	}
	// Digit runs: repeated digits, ascending and descending runs, repeated short groups.
	digits := "0123456789"
	for n := 8; n <= 16; n++ {
		for _, d := range digits {
			add(strings.Repeat(string(d), n))
		}
	}
	for start := 0; start < 10; start++ {
		for n := 8; n <= 20; n++ {
			var up, down strings.Builder
			for i := 0; i < n; i++ {
				up.WriteByte(digits[(start+i)%10])
				down.WriteByte(digits[(start-i+100)%10])
			}
			add(up.String())
			add(down.String())
		}
	}
	for a := 0; a < 100; a++ {
		g := fmt.Sprintf("%02d", a)
		add(strings.Repeat(g, 4))
		add(strings.Repeat(g, 5))
	}
	for a := 0; a < 10000; a++ {
		g := fmt.Sprintf("%04d", a)
		if g[0] == g[1] && g[2] == g[3] || a%1111 == 0 || isRun(g) {
			add(g + g)
		}
	}
	// Letter runs and repeats.
	letters := "abcdefghijklmnopqrstuvwxyz"
	for n := 8; n <= 26; n++ {
		add(letters[:n])
		add(reverse(letters[:n]))
	}
	for _, l := range letters {
		add(strings.Repeat(string(l), 8))
		add(strings.Repeat(string(l), 10))
	}
	for _, w := range walks {
		for _, x := range walks {
			if len(w) <= 6 && len(x) <= 6 {
				add(w + x)
			}
		}
	}
	// Dates written as DDMMYYYY and MMDDYYYY for common birth years.
	for y := 1980; y <= 2000; y++ {
		for m := 1; m <= 12; m++ {
			for _, d := range []int{1, 10, 12, 15, 20} {
				add(fmt.Sprintf("%02d%02d%d", d, m, y))
				add(fmt.Sprintf("%02d%02d%d", m, d, y))
			}
		}
	}

	list := make([]string, 0, len(set))
	for s := range set {
		list = append(list, s)
	}
	slices.Sort(list)

	var b strings.Builder
	b.WriteString(`# Common passwords refused by Postern's password check (edge/pages.CheckPassword), one a line,
# lowercased. Lines starting with # are comments.
#
# How it was made: written by passwords/gen.go (go generate in edge/pages), not downloaded. Its seed
# lists were typed from general knowledge of what leaked-password corpora and yearly "worst passwords"
# lists keep finding: the perennial top entries (English and French), first names, pets, sports, places
# and pop culture, QWERTY/AZERTY/QWERTZ keyboard walks, and digit and letter runs. The list is their
# combinations: each base with the suffixes people append to pass composition rules (1, 123, !, ...),
# behind a few prefixes, doubled, after "my", "the" and "ilove"; the top entries and names followed by
# years (1985-2026, and two digits from 1980 for the top entries); leetspeak variants (a->@/4, o->0,
# e->3, i->1, s->$/5); repeated digit groups, ascending and descending runs; DDMMYYYY and MMDDYYYY birth
# dates (1980-2000). Only entries of 8 to 64 characters are kept: shorter ones fail the length rule
# anyway.
`)
	for _, s := range list {
		b.WriteString(s)
		b.WriteByte('\n')
	}
	if err := os.WriteFile(*out, []byte(b.String()), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "writing the list:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "%d passwords written to %s\n", len(list), *out)
}

func isRun(g string) bool {
	for i := 1; i < len(g); i++ {
		if g[i] != g[i-1]+1 {
			return false
		}
	}
	return true
}

func reverse(s string) string {
	r := []byte(s)
	slices.Reverse(r)
	return string(r)
}
